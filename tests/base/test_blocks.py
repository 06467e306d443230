"""One way to find a model's transformer blocks, for train.compile and head.unfreeze_last alike."""

from tests.conftest import tiny_llama
from torch import nn

from tunesmith.base.blocks import repeated_block_stacks, transformer_blocks


def test_the_decoder_layers_are_the_blocks_of_a_llama():
    model = tiny_llama(64)
    assert transformer_blocks(model) is model.model.layers
    assert repeated_block_stacks(model) == [model.model.layers]  # the outermost stack only


def test_the_largest_stack_is_the_main_one_and_a_model_without_blocks_has_none():
    model = nn.Sequential(nn.ModuleList([nn.Linear(2, 2)] * 2), nn.ModuleList([nn.Linear(8, 8)] * 3))
    assert len(repeated_block_stacks(model)) == 2
    assert transformer_blocks(model) is model[1]
    assert transformer_blocks(nn.Linear(2, 2)) is None
