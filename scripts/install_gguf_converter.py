"""Put llama.cpp's own HF -> GGUF converter beside the installed llama-cpp-python (`make llamacpp` runs this).

The converter (convert_hf_to_gguf.py, its conversion/ package and the gguf-py it imports) is not part of the
llama-cpp-python wheel, but its sdist vendors the llama.cpp tree the wheel was built from: the converter is taken
from that same sdist, so converter and runtime are of one llama.cpp commit. PyPI's `gguf` package is a different,
incompatible version (LazyChunkedTensor missing): the converter runs with its own gguf-py first on the path.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from llama_cpp_sources import extract_vendored_tree, installed_version

TARGET = Path(sys.prefix) / "share" / "tunesmith" / "llama.cpp"
WANTED = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def main() -> int:
    wanted_version = installed_version()
    stamp = TARGET / "VERSION"
    if stamp.is_file() and stamp.read_text().strip() == wanted_version:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        staging = extract_vendored_tree(Path(tmp), is_wanted)
        (staging / "VERSION").write_text(wanted_version + "\n")
        if TARGET.exists():
            shutil.rmtree(TARGET)
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging, TARGET)
    print(f"llama.cpp converter {wanted_version} in {TARGET}")
    return 0


def is_wanted(relative: str) -> bool:
    return any(relative == w or (w.endswith("/") and relative.startswith(w)) for w in WANTED)


if __name__ == "__main__":
    sys.exit(main())
