"""Prompt ids as llama-server makes them: a template that writes BOS itself gets one BOS, not two."""

from types import SimpleNamespace

from tunesmith.base.templates import GEMMA
from tunesmith.evaluate.llamacpp import served_prompt_ids
from tunesmith.export.run import template_origin


class FakeLlama:
    """llama.cpp's tokenize: add_bos adds one when the vocabulary's flag says so, and warns (here: fails) when the
    text already starts with one."""

    def __init__(self, adds_bos: bool):
        self.adds_bos = adds_bos
        self._model = SimpleNamespace(add_bos_token=lambda: adds_bos)

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        ids = [2, 7, 8] if text.startswith(b"<bos>") else [7, 8]
        assert not (add_bos and self.adds_bos and ids[0] == 2), "check_double_bos_eos: 2 BOS tokens"
        return ([2] if add_bos and self.adds_bos else []) + ids

    def token_bos(self) -> int:
        return 2


def test_a_bos_the_template_wrote_is_not_doubled():
    assert served_prompt_ids(FakeLlama(adds_bos=True), "<bos><start_of_turn>user") == [2, 7, 8]
    assert served_prompt_ids(FakeLlama(adds_bos=True), "<|im_start|>user") == [2, 7, 8]
    assert served_prompt_ids(FakeLlama(adds_bos=False), "<bos>x") == [2, 7, 8]
    assert served_prompt_ids(FakeLlama(adds_bos=False), "x") == [7, 8]


def test_the_export_says_where_its_chat_template_came_from():
    assert "no chat template exists" in template_origin(SimpleNamespace(chat_template=None))[0]
    assert "documented 'gemma' default" in template_origin(SimpleNamespace(chat_template=GEMMA.jinja))[0]
    assert template_origin(SimpleNamespace(chat_template="{{ messages }}")) == []
