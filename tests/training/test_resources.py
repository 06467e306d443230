import json
import subprocess
import sys

import pytest

from tunesmith.training.resources import LARGEST_MMAP_THRESHOLD, M_MMAP_THRESHOLD, keep_freed_memory

# Three 20 MiB blocks, as a step allocates and frees its activations: do they come from the heap (below the
# program break), is the break still where it was once they are freed (the memory kept for the next step), and
# does release_free_memory hand it back all the same?
# A fresh process each time: the allocator's settings are process-wide.
ALLOCATE_AND_FREE = """
import ctypes, json, sys
from tunesmith.training.resources import keep_freed_memory, release_free_memory
libc = ctypes.CDLL("libc.so.6")
libc.sbrk.restype = libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "keep":
    assert keep_freed_memory()
elif sys.argv[1] == "heap-only":
    assert libc.mallopt(int(sys.argv[2]), int(sys.argv[3]))
blocks = [libc.malloc(20 * 2**20) for _ in range(3)]
for block in blocks:
    ctypes.memset(block, 1, 20 * 2**20)
top = libc.sbrk(0)
in_heap = all(block < top for block in blocks)
for block in reversed(blocks):
    libc.free(block)
kept = libc.sbrk(0) >= top
release_free_memory()
print(json.dumps({"in_heap": in_heap, "kept": kept, "released": libc.sbrk(0) < top}))
"""


def allocate_and_free(*mode: str) -> dict:
    argv = [sys.executable, "-c", ALLOCATE_AND_FREE, *mode]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux") or not keep_freed_memory(), reason="glibc only")
def test_freed_memory_stays_with_the_process_for_the_next_step():
    assert allocate_and_free("default")["in_heap"] is False  # glibc maps blocks this big apart from its heap
    heap_only = ("heap-only", str(M_MMAP_THRESHOLD), str(LARGEST_MMAP_THRESHOLD))
    assert allocate_and_free(*heap_only) == {"in_heap": True, "kept": False, "released": True}  # ...and trims it
    assert allocate_and_free("keep") == {"in_heap": True, "kept": True, "released": True}
