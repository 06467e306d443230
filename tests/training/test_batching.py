from tunesmith.training.batching import epoch_order


def test_every_example_once_per_epoch_and_orders_are_reproducible():
    lengths = [((i * 37) % 101) + 1 for i in range(203)]
    for grouped in (False, True):
        batches = epoch_order(lengths, 8, seed=1, epoch=2, group_by_length=grouped)
        assert sorted(i for b in batches for i in b) == list(range(203))
        assert batches == epoch_order(lengths, 8, seed=1, epoch=2, group_by_length=grouped)
        assert batches != epoch_order(lengths, 8, seed=1, epoch=3, group_by_length=grouped)


def padding_share(lengths, batches) -> float:
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths) / padded


def test_grouping_by_length_removes_most_padding():
    lengths = [((i * 37) % 301) + 5 for i in range(1000)]
    plain = padding_share(lengths, epoch_order(lengths, 8, 0, 0, group_by_length=False))
    grouped = padding_share(lengths, epoch_order(lengths, 8, 0, 0, group_by_length=True))
    assert plain > 0.3 and grouped < 0.05
