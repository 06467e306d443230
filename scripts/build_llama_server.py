"""Build llama.cpp's llama-server from the tree the installed llama-cpp-python was built from (`make llama-server`).

The server (parallel slots, continuous batching, grammar-constrained JSON, the OpenAI API) is not part of the
llama-cpp-python wheel, whose own Python server answers one request at a time; its sdist vendors the llama.cpp
sources, so the binary and the runtime that verified the export are one llama.cpp commit. Built once (~8 minutes
on 2 cores) into <venv>/share/tunesmith/bin/llama-server and kept in ~/.cache/tunesmith/llama-server/ under the
version and this CPU's flags (the build is -march=native), as pip keeps built wheels, so later venvs on the same
machine copy it instead of building again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from llama_cpp_sources import extract_vendored_tree, installed_version

SHARE = Path(sys.prefix) / "share" / "tunesmith"
BINARY = SHARE / "bin" / "llama-server"
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_HTML=OFF",
    "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF",
]  # fmt: skip


def cache_path(wanted: str) -> Path:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    machine = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "tunesmith" / "llama-server" / f"{wanted}-{machine}" / "llama-server"


def install(source: Path, wanted: str) -> None:
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    partial = BINARY.with_name(".llama-server.partial")
    shutil.copy2(source, partial)
    os.replace(partial, BINARY)
    (SHARE / "bin" / "llama-server.version").write_text(wanted + "\n")


def main() -> int:
    wanted = installed_version()
    stamp = SHARE / "bin" / "llama-server.version"
    if BINARY.is_file() and stamp.is_file() and stamp.read_text().strip() == wanted:
        return 0
    cached = cache_path(wanted)
    if cached.is_file():
        install(cached, wanted)
        print(f"llama-server {wanted} from {cached}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        source, build = extract_vendored_tree(Path(tmp)), Path(tmp) / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.run(["cmake", "-S", str(source), "-B", str(build), *generator, *CMAKE_FLAGS], check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs], check=True)
        built = build / "bin" / "llama-server"
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, cached.with_name(".partial"))
        os.replace(cached.with_name(".partial"), cached)
        install(built, wanted)
    print(f"llama-server {wanted} in {BINARY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
