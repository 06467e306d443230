"""`tunesmith eval --engine`: llama.cpp answers every column once the export has shown its f16 GGUF answers like
PyTorch, with the prompt ids, stop rule and decoding of PyTorch's generation; otherwise PyTorch answers, and the
report says who answered."""

import json
import shutil

import pytest
from tests.evaluate.conftest import FAST

from tunesmith.evaluate.engine import Unavailable, choose_engines
from tunesmith.evaluate.run import EvalOptions, evaluate_run

pytest.importorskip("llama_cpp", reason="make llamacpp installs llama-cpp-python (make test does)")


@pytest.fixture(scope="module")
def exported_run(tiny_run, tmp_path_factory):
    """A copy of the tiny run with its f16 GGUF exported and verified in RUN/export, as `tunesmith export` does."""
    from tunesmith.export.options import ExportOptions
    from tunesmith.export.run import export_run

    run = shutil.copytree(tiny_run, tmp_path_factory.mktemp("engine") / "run")
    export_run(run, ExportOptions(("gguf",), ("f16",), limit=6))
    return run


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path_factory.getbasetemp() / "home"))  # the base GGUF's cache


def answers(report) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "source"} for row in report["answers"]]


def test_llama_cpp_answers_every_column_like_pytorch_once_the_export_proved_its_gguf(exported_run, tiny_eval):
    export = json.loads((exported_run / "export" / "export.json").read_text())
    assert next(r for r in export["table"] if r["artefact"] == "GGUF f16 (llama.cpp)")["identical answers"] == 1.0
    result = evaluate_run(exported_run, EvalOptions(**FAST))  # auto
    llama, pytorch = result.report, tiny_eval[0].report  # the same run without an export: PyTorch
    engines = llama["engines"]["answered_by"]
    assert set(engines) == {*llama["columns"], "memorisation", "forgetting"}
    assert engines["tuned"].startswith("llama.cpp, ") and "model-f16.gguf (100% of the export's" in engines["tuned"]
    assert (
        engines["base zero-shot"].startswith("llama.cpp, ") and "the base converted to f16" in engines["base zero-shot"]
    )
    assert engines["forgetting"] == "PyTorch (float32)"
    assert set(pytorch["engines"]["answered_by"].values()) == {"PyTorch (float32)"}
    assert pytorch["engines"]["note"].startswith("llama.cpp not used: no f16 GGUF in ")
    assert answers(llama) == answers(pytorch) and llama["table"] == pytorch["table"]
    assert "Answered by:\n- base zero-shot, base few-shot (k=2): llama.cpp" in result.md_path.read_text()


def choose(run, engine="auto", constrained=False):
    from transformers import AutoTokenizer

    from tunesmith.runs import read_run_config

    tokenizer = AutoTokenizer.from_pretrained(run / "adapter")
    return choose_engines(run, read_run_config(run), engine, constrained, tokenizer, lambda event: None)


def test_without_a_proven_export_auto_is_pytorch_and_llamacpp_says_what_to_run(tiny_run, exported_run, tmp_path):
    with pytest.raises(Unavailable, match="--engine llamacpp: no f16 GGUF .*`tunesmith export"):
        choose(tiny_run, "llamacpp")
    stale = shutil.copytree(exported_run, tmp_path / "stale")
    record = json.loads((stale / "export" / "export.json").read_text())
    (stale / "export" / "export.json").write_text(json.dumps(record | {"source": "0" * 64}))
    assert "was retrained since its export: `tunesmith export" in choose(stale).note  # the GGUF itself is intact
    assert choose(stale, "pytorch").llama == {}
    with pytest.raises(Unavailable, match="retrained"):
        choose(stale, "llamacpp")
    del record["source"]  # an export from before it recorded its source: used only when asked for
    (stale / "export" / "export.json").write_text(json.dumps(record))
    assert "does not record its source" in choose(stale).note
    assert "does not record its source artefact" in choose(stale, "llamacpp").answered_by["tuned"]


def test_a_constrained_evaluation_decodes_in_pytorch(exported_run):
    assert choose(exported_run, constrained=True).note == (
        "llama.cpp not used: --constrain decodes through a PyTorch logits processor"
    )
    with pytest.raises(Unavailable, match="--constrain"):
        choose(exported_run, "llamacpp", constrained=True)


def test_a_base_whose_config_names_no_architecture_is_converted_through_links_that_name_one(tmp_path):
    from tunesmith.evaluate.engine import with_architecture

    source = tmp_path / "dequantised"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    (source / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "scratch").mkdir()
    linked = with_architecture(source, tmp_path / "scratch")
    assert json.loads((linked / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert (linked / "model.safetensors").resolve() == source / "model.safetensors"
    assert json.loads((source / "config.json").read_text()) == {"model_type": "llama", "hidden_size": 8}
    assert with_architecture(linked, tmp_path / "unused") == linked  # names one already: used as it is


def test_a_classifier_is_refused_llamacpp_in_one_line(tiny_classify_run):
    from tunesmith.errors import ConfigError

    with pytest.raises(ConfigError, match="--engine llamacpp: a classifier's predictions are not generated"):
        evaluate_run(tiny_classify_run, EvalOptions(engine="llamacpp"))
