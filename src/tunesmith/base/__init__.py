"""01 base selection: find a base model and load it safely."""

from .catalog import BUILTINS, Builtin
from .load import Base, load_base, load_tokenizer

__all__ = ["BUILTINS", "Builtin", "Base", "load_base", "load_tokenizer"]
