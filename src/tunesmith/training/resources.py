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


# mallopt parameters (malloc.h); -1 for M_TRIM_THRESHOLD turns trimming off (mallopt(3)).
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
LARGEST_MMAP_THRESHOLD = 32 * 2**20  # glibc's ceiling on 64-bit systems


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of handing it back to the OS after every free.

    A training step frees its activations and allocates them again in the next step. By default glibc hands the
    freed top of its heap, and every block over its mmap threshold, back to the OS, so each step page-faults its
    way through memory it just had; in a VM a page fault is dear. `make bench` measures the difference (arm
    ours-trimmed, docs/benchmarks.md). Peak RSS stays what a step needs; RSS no longer falls back between steps.
    False where the C library is not glibc (musl, macOS: nothing changed)."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(
        mallopt(parameter, value)
        for parameter, value in (
            (M_TRIM_THRESHOLD, -1),
            (M_TOP_PAD, 64 * 2**20),
            (M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD),
        )
    )


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
