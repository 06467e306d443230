"""`tunesmith serve` in the terminal: where the API is and how to call it."""

from __future__ import annotations

from .render import console

SNIPPET = """import os
from openai import OpenAI

client = OpenAI(base_url="{url}", api_key={key})
answer = client.chat.completions.create(model="{model}", messages=[{{"role": "user", "content": "..."}}])
print(answer.choices[0].message.content)"""


def print_serving(handle) -> None:
    console.print(f"[green]serving[/] {handle.model} at [bold]{handle.url}[/] (engine log: {handle.log}); Ctrl-C stops")
    key = 'os.environ["TUNESMITH_API_KEY"]' if handle.api_key else '"none"'
    console.print(SNIPPET.format(url=handle.url, key=key, model=handle.model), highlight=False)
