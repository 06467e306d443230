"""search.json: what report.html shows of a search — every trial, the best and the baseline, and seeded fANOVA
importances once two trials completed — written from the study alone (no training here)."""

from types import SimpleNamespace

import optuna

from tunesmith.tune.search import search_document
from tunesmith.tune.study import best_trial, trial_row


def tiny_study(complete: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    for number in range(complete):
        trial = study.ask(
            {
                "train.learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
                "lora.r": optuna.distributions.CategoricalDistribution([2, 4]),
            }
        )
        trial.set_user_attr("baseline", number == 0)
        study.tell(trial, trial.params["train.learning_rate"] * 10 + trial.params["lora.r"])
    pruned = study.ask()
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    return study


def document_of(study: optuna.Study) -> dict:
    config = SimpleNamespace(name="s", tune=SimpleNamespace(metric="eval_loss", trials=5, space={"lora.r": 0}))
    best = best_trial(study)
    baseline = next(t for t in study.trials if t.user_attrs.get("baseline"))
    return search_document(config, study, [trial_row(t) for t in study.trials], best, baseline)


def test_search_json_lists_every_trial_the_best_the_baseline_and_the_importances():
    study = tiny_study(complete=4)
    document = document_of(study)
    assert [t["state"] for t in document["trials"]] == ["COMPLETE"] * 4 + ["PRUNED"]
    assert document["best"] == best_trial(study).number and document["baseline"] == 0
    assert document["direction"] == "minimize" and document["metric"] == "eval_loss"
    assert set(document["importances"]) == {"train.learning_rate", "lora.r"}
    assert abs(sum(document["importances"].values()) - 1) < 1e-6
    assert document_of(study)["importances"] == document["importances"]  # seeded: the page does not change


def test_importances_wait_for_two_completed_trials():
    assert document_of(tiny_study(complete=1))["importances"] == {}
