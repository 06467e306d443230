"""The search space: declared in run.yaml, checked before any training, sampled into valid trial configs."""

import optuna
import pytest

from tunesmith.config import validate_config
from tunesmith.errors import ConfigError
from tunesmith.tune.space import baseline_params, check_space, choice_labels, suggest, trial_config


def config_with(tune: dict, **lora):
    return validate_config(
        {
            "name": "ner",
            "base": "tiny",
            "output_dir": "/tmp/runs",
            "lora": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]} | lora,
            "data": {"train": "/tmp/train.jsonl", "eval": "/tmp/eval.jsonl"},
            "train": {"learning_rate": 1e-3, "batch_size": 4},
            "tune": tune,
        }
    )


SPACE = {
    "train.learning_rate": {"low": 1e-5, "high": 1e-2, "log": True},
    "train.batch_size": {"low": 2, "high": 8, "step": 2},
    "lora.r": {"choices": [4, 8, 16]},
    "lora.target_modules": {"choices": [["q_proj", "v_proj"], "all-linear"]},
}


def test_sampled_settings_build_a_trial_config_in_the_tune_directory():
    config = config_with({"space": SPACE, "fixed": {"train.max_steps": 30}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    values = suggest(study.ask(), config.tune.space)
    trial = trial_config(config, values, "trial-0003")
    assert trial.run_dir == config.tune_dir / "trial-0003" and str(config.tune_dir).endswith("runs/ner-tune")
    assert trial.train.max_steps == 30
    assert 1e-5 <= trial.train.learning_rate <= 1e-2
    assert trial.train.batch_size in (2, 4, 6, 8) and isinstance(trial.train.batch_size, int)
    assert trial.lora.r in (4, 8, 16)
    assert trial.lora.target_modules in (["q_proj", "v_proj"], "all-linear")


def test_list_choices_are_offered_to_optuna_as_their_yaml_text_and_come_back_as_lists():
    config = config_with({"space": SPACE})
    assert list(choice_labels(config.tune.space["lora.target_modules"])) == ["[q_proj, v_proj]", "all-linear"]
    fixed = {
        "train.learning_rate": 3e-4,
        "train.batch_size": 4,
        "lora.r": 16,
        "lora.target_modules": "[q_proj, v_proj]",
    }
    values = suggest(optuna.trial.FixedTrial(fixed), config.tune.space)
    assert values["lora.target_modules"] == ["q_proj", "v_proj"] and values["lora.r"] == 16


def test_baseline_is_the_files_own_settings_or_says_why_not():
    params, why_not = baseline_params(config_with({"space": SPACE}))
    assert why_not == ""
    assert params == {
        "train.learning_rate": 1e-3,
        "train.batch_size": 4,
        "lora.r": 8,
        "lora.target_modules": "[q_proj, v_proj]",
    }
    params, why_not = baseline_params(config_with({"space": SPACE}, r=12))
    assert params == {} and "lora.r=12 is not among its choices" in why_not


def test_a_choice_the_config_would_refuse_fails_before_any_training():
    config = config_with({"space": {"lora.lora_dropout": {"choices": [0.0, 1.5]}}})
    with pytest.raises(ConfigError, match=r"tune.space lora.lora_dropout=1.5: lora.lora_dropout: Input should be less"):
        check_space(config)


@pytest.mark.parametrize(
    ("tune", "message"),
    [
        ({"space": {"train.lr": {"low": 1e-5, "high": 1e-3}}}, "'train.lr' is not a run.yaml setting"),
        ({"fixed": {"steps": 3}}, "'steps' is not a run.yaml setting"),
        ({"space": {"lora.r": {"low": 4}}}, "give either low and high, or choices"),
        ({"space": {"train.learning_rate": {"low": 0, "high": 1, "log": True}}}, "a log range needs low > 0"),
        ({"heartbeat_seconds": 30, "stale_after_seconds": 20}, "stale_after_seconds must exceed"),
        ({"metric": "bleu"}, "tune.metric: Input should be 'eval_loss'"),
    ],
)
def test_a_bad_tune_section_is_a_config_error(tune, message):
    with pytest.raises(ConfigError, match="tune"):
        try:
            config_with(tune)
        except ConfigError as err:
            assert message in str(err)
            raise
