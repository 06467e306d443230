"""The llama.cpp tree vendored in the installed llama-cpp-python's sdist: what the converter and llama-server are
taken from, so they are of the commit the runtime was built from (used by install_gguf_converter.py and
build_llama_server.py)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path


def installed_version() -> str:
    return version("llama-cpp-python")


def extract_vendored_tree(into: Path, wanted: Callable[[str], bool] = lambda relative: True) -> Path:
    """Download the sdist of the installed version into `into` and extract vendor/llama.cpp (the files `wanted`
    accepts, by path relative to it) to into/llama.cpp; returns that folder."""
    release = installed_version()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(into),
         f"llama-cpp-python=={release}"],
        check=True,
    )  # fmt: skip
    sdist = next(Path(into).glob("llama_cpp_python-*.tar.gz"))
    root = f"llama_cpp_python-{release}/vendor/llama.cpp/"
    target = Path(into) / "llama.cpp"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(root) and wanted(m.name[len(root) :])]
        for member in members:
            member.name = member.name[len(root) :]
        archive.extractall(target, members=members, filter="data")
    return target
