"""tunesmith: turn a general foundation model into a specialist on your own data, and prove it did.

The Python API mirrors the CLI: each workflow stage is a function with typed inputs and outputs.
Names are imported on first use, so `tunesmith --help` does not pay for torch and transformers.
"""

from .lazy import lazy_exports

_EXPORTS = {
    "load_base": "base",
    "load_tokenizer": "base",
    "RunConfig": "config",
    "load_config": "config",
    "read_examples": "data.formats",
    "AuditSettings": "data.audit",
    "audit_dataset": "data.audit",
    "PrepareSettings": "data.prepare",
    "prepare_dataset": "data.prepare",
    "read_records": "data.records",
    "ConfigError": "errors",
    "DataError": "errors",
    "ModelLoadError": "errors",
    "TunesmithError": "errors",
    "UnsafeFileError": "errors",
    "generate": "evaluate.generate",
    "evaluate_examples": "evaluate.task",
    "EvalOptions": "evaluate.run",
    "evaluate_run": "evaluate.run",
    "Drift": "evaluate.drift",
    "general_drift": "evaluate.drift",
    "load_tuned": "runs",
    "TrainResult": "training.result",
    "train": "finetune",
    "ExportOptions": "export.options",
    "export_run": "export.run",
    "ServeOptions": "serve.run",
    "serve_run": "serve.run",
    "tune_lr": "tune.lr_range",
    "tune_search": "tune.search",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
