"""Atomic file and directory writes: a reader sees the old version or the new one, never half of one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import RefusedOverwrite, UnreadableInput


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


def real_path(path: Path | str) -> Path:
    """The path with every link followed; never raises (Path.resolve does on a symlink loop)."""
    return Path(os.path.realpath(path))


def open_regular_file(path: Path | str, max_bytes: int):
    """A binary handle on `path`, refused unless it is a regular file of at most `max_bytes` (a FIFO would block
    for ever, /dev/zero never ends, a directory is no data). O_NONBLOCK so opening a FIFO cannot hang."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise UnreadableInput(f"{path}: cannot read: {err.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnreadableInput(f"{path}: not a regular file")
    if info.st_size > max_bytes:
        os.close(fd)
        raise UnreadableInput(f"{path}: {info.st_size:,} bytes; the limit is {max_bytes:,}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular_bytes(path: Path | str, max_bytes: int) -> bytes:
    """The whole of a regular file, read in 1 MiB chunks and never past `max_bytes` (a file still growing)."""
    with open_regular_file(path, max_bytes) as handle:
        chunks, size = [], 0
        while block := handle.read(1 << 20):
            size += len(block)
            if size > max_bytes:
                raise UnreadableInput(f"{path}: over {max_bytes:,} bytes")
            chunks.append(block)
    return b"".join(chunks)


def read_regular_text(path: Path | str, max_bytes: int) -> str:
    data = read_regular_bytes(path, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnreadableInput(f"{path}: byte {err.start}: not UTF-8 text") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


MANIFEST = "MANIFEST.json"


def write_directory(target: Path, fill: Callable[[Path], None], made_by: str) -> None:
    """Build a directory in a staging place, write a MANIFEST (who made it, sha256 + sizes) last, then rename it
    in. An existing `target` is replaced only if its MANIFEST says `made_by` wrote it: never a folder of the
    user's (git and rsync's rule: delete only what you created)."""
    check_replaceable(target, made_by)
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        fill(staging)
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        listed = {str(p.relative_to(staging)): {"sha256": sha256_of(p), "bytes": p.stat().st_size} for p in files}
        manifest = {"made_by": made_by, "files": listed}
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


def check_replaceable(target: Path, made_by: str) -> None:
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise RefusedOverwrite(f"{target}: exists and is not a directory tunesmith wrote; choose another path")
    if written_by(target) != made_by:
        raise RefusedOverwrite(
            f"{target}: exists and was not written by tunesmith {made_by} (no {MANIFEST} saying so); choose a new "
            "path, or remove it yourself"
        )


def read_manifest(directory: Path) -> dict | None:
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def written_by(directory: Path) -> str | None:
    """Who wrote the directory, by its MANIFEST (before the field existed, tunesmith wrote only checkpoints and
    exports: those read as "run")."""
    manifest = read_manifest(directory)
    if manifest is None:
        return None
    return manifest.get("made_by", "run") if "files" in manifest else "run"


def manifest_files(manifest: dict) -> dict:
    return manifest["files"] if isinstance(manifest.get("files"), dict) else manifest


def fsync_tree(directory: Path) -> None:
    for path in [*directory.rglob("*"), directory]:
        flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def verify_directory(directory: Path, only: str | None = None) -> str | None:
    """None if every file (or only the file named `only`) matches the MANIFEST, else what is wrong (one line)."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return f"{directory}: no {MANIFEST} (an interrupted save)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{manifest_path}: unreadable: {err}"
    listed = manifest_files(manifest)
    if only is not None and only not in listed:
        return f"{directory / only}: not listed in {MANIFEST}"
    for name, expected in listed.items() if only is None else [(only, listed[only])]:
        path = directory / name
        if not path.is_file():
            return f"{path}: missing"
        if path.stat().st_size != expected["bytes"] or sha256_of(path) != expected["sha256"]:
            return f"{path}: contents do not match {MANIFEST}"
    return None
