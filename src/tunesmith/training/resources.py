"""What a run cost: peak resident memory of this process, and bytes on disk."""

from __future__ import annotations

import ctypes
import gc
import resource
import sys
from pathlib import Path


def reset_peak_rss() -> bool:
    """Start a fresh high-water mark (Linux: writing 5 to clear_refs); False where the OS cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def release_free_memory() -> None:
    """Give back to the OS what the allocator still holds of freed memory (glibc's malloc_trim): loading a
    model leaves a heap of freed temporaries that would otherwise count in every later step's RSS."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def peak_rss_bytes() -> int:
    """High-water mark of resident memory since the process started or since reset_peak_rss()."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
