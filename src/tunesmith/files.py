"""Atomic file and directory writes: a reader sees the old version or the new one, never half of one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MANIFEST = "MANIFEST.json"


def write_directory(target: Path, fill: Callable[[Path], None]) -> None:
    """Build a directory in a staging place, write a MANIFEST (sha256 + sizes) last, then rename it in."""
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        fill(staging)
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        manifest = {str(p.relative_to(staging)): {"sha256": sha256_of(p), "bytes": p.stat().st_size} for p in files}
        atomic_write_text(staging / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        fsync_tree(staging)
        if target.exists():
            retired = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def fsync_tree(directory: Path) -> None:
    for path in [*directory.rglob("*"), directory]:
        flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def verify_directory(directory: Path) -> str | None:
    """None if every file matches the MANIFEST, else what is wrong (one line)."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return f"{directory}: no {MANIFEST} (an interrupted save)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{manifest_path}: unreadable: {err}"
    for name, expected in manifest.items():
        path = directory / name
        if not path.is_file():
            return f"{path}: missing"
        if path.stat().st_size != expected["bytes"] or sha256_of(path) != expected["sha256"]:
            return f"{path}: contents do not match {MANIFEST}"
    return None
