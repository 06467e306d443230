"""`tunesmith export` on a tiny LoRA run: merged weights equal the adapter's model (peft#1388), GGUF through
llama.cpp's converter and quantizer, an Ollama Modelfile, and a verification that catches a planted template or
stop-token mismatch."""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from tunesmith.errors import ConfigError, RefusedOverwrite
from tunesmith.evaluate.llamacpp import llama_cpp_model
from tunesmith.export import gguf
from tunesmith.export.merged import end_of_turn_id
from tunesmith.export.options import ExportOptions
from tunesmith.export.run import export_run
from tunesmith.export.verify import gguf_stop_tokens, gguf_template, stop_check, template_checks
from tunesmith.runs import load_tuned

pytest.importorskip("llama_cpp", reason="make llamacpp installs llama-cpp-python (make test does)")


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "out"
    options = ExportOptions(("merged", "gguf", "ollama", "vllm"), ("f16", "q8_0"), out, merged_dtype="fp32", limit=4)
    return export_run(tiny_run, options)


def test_merged_weights_give_the_adapters_logits(tiny_run, exported):
    tuned = load_tuned(tiny_run, merge=False).model
    merged = AutoModelForCausalLM.from_pretrained(exported.out / "merged", dtype=torch.float32).eval()
    ids = torch.tensor([[1, 17, 300, 2045, 9, 2, 1, 44]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, tuned(ids).logits, atol=1e-4, rtol=1e-4)


def test_merged_generation_config_stops_at_the_templates_end_of_turn(exported):
    tokenizer = AutoTokenizer.from_pretrained(exported.out / "merged")
    assert GenerationConfig.from_pretrained(exported.out / "merged").eos_token_id == end_of_turn_id(tokenizer)
    assert tokenizer.convert_ids_to_tokens(end_of_turn_id(tokenizer)) == "<|im_end|>"


def test_every_artefact_is_written_and_verified(exported):
    kinds = [(a.kind, a.quant) for a in exported.artefacts]
    assert kinds == [("merged", "fp32"), ("gguf", "f16"), ("gguf", "q8_0"), ("vllm", ""), ("ollama", "q8_0")]
    assert all(a.path.exists() and a.bytes > 0 for a in exported.artefacts)
    assert [r["artefact"] for r in exported.table] == [
        "PyTorch (the run)",
        "merged (transformers)",
        "GGUF f16 (llama.cpp)",
        "GGUF q8_0 (llama.cpp)",
    ]
    checks = {c["check"]: c["status"] for c in exported.checks}
    assert checks["GGUF f16: chat template"] == checks["GGUF q8_0: stop token"] == "ok", exported.checks
    assert checks["merged: stop token"] == "ok"
    assert exported.table[1]["identical answers"] == 1.0  # fp32 merged weights answer exactly as the run
    report = json.loads((exported.out / "export.json").read_text())
    assert report["table"] == exported.table
    assert "## The held-out prompts" in (exported.out / "EXPORT.md").read_text()
    modelfile = (exported.out / "Modelfile").read_text()
    assert "FROM ./model-q8_0.gguf" in modelfile and "<|im_start|>{{ .Role }}" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "--enable-lora" in (exported.out / "vllm" / "serve.sh").read_text()


def test_a_planted_template_change_and_stop_token_change_fail_the_verification(exported, tmp_path):
    merged = tmp_path / "merged"
    shutil.copytree(exported.out / "merged", merged)
    training = AutoTokenizer.from_pretrained(exported.out / "merged")
    template = merged / "chat_template.jinja"
    template.write_text(template.read_text().replace("<|im_start|>assistant", "<|im_start|>bot"))
    config = json.loads((merged / "tokenizer_config.json").read_text())
    config["eos_token"] = "<|im_start|>"
    (merged / "tokenizer_config.json").write_text(json.dumps(config))
    llm = llama_cpp_model(gguf.convert(merged, tmp_path / "planted.gguf"), n_ctx=256, threads=1)
    checked = template_checks(training.chat_template, gguf_template(llm), "planted")
    assert checked["status"] == "fail" and "first difference" in checked["detail"] and "bot" in checked["detail"]
    stopped = stop_check(end_of_turn_id(training), gguf_stop_tokens(llm), training.convert_ids_to_tokens, "planted")
    assert stopped["status"] == "fail" and "<|im_end|>" in stopped["detail"], stopped


def test_an_export_folder_tunesmith_did_not_write_is_refused(tiny_run, tmp_path):
    theirs = tmp_path / "mine"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(RefusedOverwrite):
        export_run(tiny_run, ExportOptions(("merged",), (), theirs, verify=False))
    assert (theirs / "notes.txt").read_text() == "keep me"


def test_unknown_targets_are_refused_before_anything_is_built(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="unknown safetensors"):
        export_run(tiny_run, ExportOptions(("merged", "safetensors"), (), tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_the_cli_exports_a_gguf_without_keeping_the_merged_weights(tiny_run, tmp_path):
    command = [sys.executable, "-m", "tunesmith", "export", str(tiny_run), "--to", "gguf", "--quant", "q4_k_m"]
    done = subprocess.run([*command, "--out", str(tmp_path / "e"), "--limit", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "e" / "model-q4_k_m.gguf").is_file() and not (tmp_path / "e" / "merged").exists()
    assert "EXPORT.md" in done.stderr


def test_a_classifier_exports_merged_weights_that_classify_as_the_run(tiny_classify_run, tmp_path):
    from transformers import AutoModelForSequenceClassification

    result = export_run(tiny_classify_run, ExportOptions(("merged",), (), tmp_path / "e", merged_dtype="fp32"))
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "e" / "merged").eval()
    tuned = load_tuned(tiny_classify_run).model
    ids = torch.tensor([[101, 2023, 2003, 2204, 102]])
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, tuned(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
    assert json.loads((tmp_path / "e" / "export.json").read_text())["artefacts"][0]["path"] == str(
        tmp_path / "e" / "merged"
    )
    with pytest.raises(ConfigError, match="merged weights only"):
        export_run(tiny_classify_run, ExportOptions(("gguf",), ("f16",), tmp_path / "g"))
    assert result.notes
