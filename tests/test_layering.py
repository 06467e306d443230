"""The shape of the code, checked: stages import only downwards, functions stay short, the training loop stays
small, and every run-directory file name is spelled once (in layout.py)."""

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tunesmith"

# Lower layers never import higher ones. Within a layer, modules may import each other.
LAYERS = [
    {"errors", "files", "config", "layout", "events", "lazy"},  # the shared facts: no stage
    {"base"},  # 01 base selection
    {"data"},  # 02 data curation
    {"strategies", "runs"},  # how a model is adapted, saved and loaded back
    {"training"},  # 04 the run
    {"evaluate"},  # 05 evaluation
    {"tune"},  # 03 hyper-tuning (trains and scores trials)
    {"export"},  # 06 shipping: merged, GGUF, Ollama, vLLM, each verified
    {"serve"},  # 06 shipping, served: llama-server or vLLM behind the OpenAI API
    {"report"},  # report.html of a run, compare or search, from their JSON files; the list of runs
    {
        "finetune",
        "compare",
        "demo",
        "estimate",
        "pick",
        "chat",
        "render",
        "render_data",
        "render_tune",
        "render_export",
        "render_serve",
        "render_report",
        "cli",
        "__main__",
    },
]
LAYER_OF = {name: index for index, layer in enumerate(LAYERS) for name in layer}
MAX_FUNCTION_LINES = 60
MAX_LOOP_LINES = 300


def top_level_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def imports_outside_type_checking(tree: ast.Module):
    """ImportFrom nodes, skipping `if TYPE_CHECKING:` blocks (type names only; nothing is imported at run time)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level and id(n) not in skipped]


def imported_top_level_names(path: Path, root: Path = SRC) -> set[str]:
    """The tunesmith top-level modules/packages a file imports (relative imports resolved)."""
    package = list(path.relative_to(root).parent.parts)
    names = set()
    for node in imports_outside_type_checking(ast.parse(path.read_text())):
        base = package[: len(package) - (node.level - 1)]
        target = base + (node.module.split(".") if node.module else [])
        if target:
            names.add(target[0])
        else:  # `from . import x` at the top of the package
            names.update(alias.name for alias in node.names)
    return names


def source_files():
    return [p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC]


def test_every_module_has_a_layer():
    unplaced = {top_level_name(p) for p in source_files()} - set(LAYER_OF)
    assert not unplaced, f"add these to LAYERS: {sorted(unplaced)}"


def test_stages_import_only_downwards():
    offenders = []
    for path in source_files():
        own = LAYER_OF[top_level_name(path)]
        for name in imported_top_level_names(path):
            if LAYER_OF.get(name, -1) > own:
                offenders.append(f"{path.relative_to(SRC)} imports {name} (layer {LAYER_OF[name]} > {own})")
    assert not offenders, "\n".join(offenders)


def test_the_layering_check_sees_an_upward_import_but_not_a_type_only_one(tmp_path):
    fake = tmp_path / "tunesmith"
    (fake / "training").mkdir(parents=True)
    bad = fake / "training" / "bad.py"
    bad.write_text("from ..evaluate.classify import score_classes\nif TYPE_CHECKING:\n    from ..tune import x\n")
    assert imported_top_level_names(bad, fake) == {"evaluate"}


def test_no_function_in_src_is_longer_than_60_lines():
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
        for path in source_files()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)


def test_the_training_loop_module_stays_small():
    lines = len((SRC / "training" / "loop.py").read_text().splitlines())
    assert lines <= MAX_LOOP_LINES


def layout_names() -> dict[str, str]:
    """layout.py's constants: NAME -> file name."""
    names = {}
    for node in ast.parse((SRC / "layout.py").read_text()).body:
        if isinstance(node, ast.Assign):
            targets = node.targets[0]
            values = node.value
            pairs = (
                zip(targets.elts, values.elts, strict=True) if isinstance(targets, ast.Tuple) else [(targets, values)]
            )
            names.update({t.id: v.value for t, v in pairs if isinstance(v, ast.Constant) and isinstance(v.value, str)})
    return names


def test_every_run_directory_file_name_is_spelled_once_in_src():
    """A file name in any other module means two owners; the directory names `adapter`/`model`/`checkpoints`
    are checked where a path is built from them (`/ "adapter"`), since the words have other uses."""
    names = layout_names()
    assert {"run.yaml", "metrics.jsonl", "train_summary.json", "adapter", "checkpoints"} <= set(names.values())
    spelled = []
    for path in source_files():
        if path.name == "layout.py" and path.parent == SRC:
            continue
        text = path.read_text()
        for value in names.values():
            pattern = rf'/ "{re.escape(value)}"' if "." not in value else rf'"{re.escape(value)}"'
            if re.search(pattern, text):
                spelled.append(f"{path.relative_to(SRC)} spells {value!r}")
    assert not spelled, "\n".join(spelled)


def test_every_event_type_has_a_renderer():
    """Events are dispatched by type: an event without a handler would never be shown."""
    from typing import get_args

    from tunesmith.events import Event
    from tunesmith.render_tune import TuneRenderer

    handled = set(TuneRenderer().handlers())
    assert set(get_args(Event)) <= handled, sorted(t.__name__ for t in set(get_args(Event)) - handled)
