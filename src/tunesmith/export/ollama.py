"""An Ollama Modelfile whose TEMPLATE renders prompts exactly as training did.

Ollama templates are Go templates, the training template is Jinja: no converter exists, so the Modelfile takes
the known template family (ChatML, Gemma, Llama 3) whose rendering equals the training template's on the
verification conversations, checked here by rendering both. A template of no known family is reported, not
guessed (Ollama then falls back to the GGUF's own template detection)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    go_template: str
    stops: tuple[str, ...]
    render: Callable[[Sequence[dict]], str]  # what go_template renders for these messages (+ generation prompt)


def chatml(messages: Sequence[dict]) -> str:
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def gemma(messages: Sequence[dict]) -> str:
    system = "".join(m["content"] + "\n\n" for m in messages if m["role"] == "system")
    turns, pending = [], system
    for m in messages:
        if m["role"] == "system":
            continue
        role = "model" if m["role"] == "assistant" else "user"
        turns.append(f"<start_of_turn>{role}\n{pending if role == 'user' else ''}{m['content']}<end_of_turn>\n")
        pending = "" if role == "user" else pending
    return "<bos>" + "".join(turns) + "<start_of_turn>model\n"


def llama3(messages: Sequence[dict]) -> str:
    body = "".join(f"<|start_header_id|>{m['role']}<|end_header_id|>\n\n{m['content']}<|eot_id|>" for m in messages)
    return "<|begin_of_text|>" + body + "<|start_header_id|>assistant<|end_header_id|>\n\n"


FAMILIES = (
    Family(
        "chatml",
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        ("<|im_end|>", "<|im_start|>"),
        chatml,
    ),
    Family(
        "gemma",
        '<bos>{{- $system := "" }}{{- range .Messages }}{{- if eq .Role "system" }}{{ $system = printf "%s%s\\n\\n"'
        ' $system .Content }}{{- else if eq .Role "user" }}<start_of_turn>user\n{{ $system }}{{ .Content }}'
        '<end_of_turn>\n{{ $system = "" }}{{- else }}<start_of_turn>model\n{{ .Content }}<end_of_turn>\n{{- end }}'
        "{{- end }}<start_of_turn>model\n",
        ("<end_of_turn>",),
        gemma,
    ),
    Family(
        "llama3",
        "<|begin_of_text|>{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}"
        "<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
        ("<|eot_id|>",),
        llama3,
    ),
)


def injected_system(tokenizer) -> str | None:
    """The system message the training template adds when a conversation has none (SmolLM2 and Qwen's ChatML
    templates do): Ollama must be given it as SYSTEM, or the served prompt differs from the trained one."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    text = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    head = "<|im_start|>system\n"
    if text.startswith(head) and "<|im_end|>" in text:
        return text[len(head) : text.index("<|im_end|>")]
    return None


def as_ollama_sees(messages: Sequence[dict], system: str | None) -> list[dict]:
    """Ollama prepends SYSTEM as a message when the request has no system message."""
    if system and not any(m["role"] == "system" for m in messages):
        return [{"role": "system", "content": system}, *messages]
    return list(messages)


def matching_family(tokenizer, conversations: Sequence[Sequence[dict]], system: str | None) -> Family | None:
    """The first family whose rendering equals the training template's on every conversation (prompts that end
    before the assistant's answer, as served)."""
    wanted = [tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True) for c in conversations]
    for family in FAMILIES:
        if all(family.render(as_ollama_sees(c, system)) == w for c, w in zip(conversations, wanted, strict=True)):
            return family
    return None


def modelfile(gguf_name: str, family: Family | None, system: str | None, num_ctx: int) -> str:
    lines = [f"FROM ./{gguf_name}", ""]
    if family is not None:
        lines += [f'TEMPLATE """{family.go_template}"""', ""]
        lines += [f'PARAMETER stop "{stop}"' for stop in family.stops]
    if system:
        lines += ["", f'SYSTEM """{system}"""']
    lines += ["", "PARAMETER temperature 0", "PARAMETER repeat_penalty 1", f"PARAMETER num_ctx {num_ctx}", ""]
    return "\n".join(lines)
