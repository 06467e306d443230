"""Documented default chat templates, for built-in bases that ship none (a base model is not a chat model).

`gemma`: Gemma 3's own instruction format (as in Google's instruction-tuned Gemma 3 tokenizers), with string
contents only: `<start_of_turn>user\\n…<end_of_turn>\\n<start_of_turn>model\\n…<end_of_turn>\\n`; a system message
is folded into the first user turn, as Gemma 3 does. Its turns end with `<end_of_turn>`, which becomes the
tokenizer's eos so that labels, generation and exports all stop there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("tunesmith")


@dataclass(frozen=True)
class DefaultTemplate:
    name: str
    jinja: str
    end_of_turn: str  # the token that ends every turn: the eos while this template is in use


GEMMA = DefaultTemplate(
    "gemma",
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}",
    "<end_of_turn>",
)

DEFAULT_TEMPLATES = {t.name: t for t in (GEMMA,)}
ANNOUNCED: set[str] = set()


def give_default_template(tokenizer, base_name: str, template_name: str) -> None:
    """Give a template-less tokenizer the named default, and make its end-of-turn token the eos; say so once."""
    if getattr(tokenizer, "chat_template", None):
        return
    template = DEFAULT_TEMPLATES[template_name]
    if tokenizer.convert_tokens_to_ids(template.end_of_turn) in (None, tokenizer.unk_token_id):
        return  # the vocabulary lacks the template's tokens: leave the base as it is (no chat template)
    tokenizer.chat_template = template.jinja
    tokenizer.eos_token = template.end_of_turn
    if base_name not in ANNOUNCED:  # once per process: a command loads the tokenizer several times
        ANNOUNCED.add(base_name)
        log.info("%s ships no chat template: using tunesmith's documented '%s' default", base_name, template.name)
