"""Process-wide runtime settings that the studio's entry points apply once at start-up.

The torch CPU backend allocates and frees large tensors every step.  glibc's malloc serves big
blocks with fresh ``mmap`` calls and returns them to the OS on ``free``; it raises that threshold
after a free, but only up to 32 MB, so larger blocks (fragment buffers at high resolutions) pay page
faults for zeroed memory again every step.  On virtual machines that costs as much as the
arithmetic: filling a 64 MB tensor took 23.6 ms by default and 4.6 ms tuned, and a 1024x1024
``bench/raster.py`` step 150 ms against 143 ms.  Keeping freed memory in the heap removes that cost;
the price is that the process keeps its peak memory.

This changes the whole process, so library code never calls it: the CLI, the GUI and the
benchmarks do, and scripts may (``studio.runtime.tune_cpu_allocator()``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger("studio")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30
_tuned: bool | None = None


def tune_cpu_allocator() -> bool:
    """Ask glibc to keep blocks up to 1 GiB in the heap instead of mmap/munmap per allocation.

    Returns True when the setting took effect (Linux with glibc), False elsewhere (macOS and
    Windows allocators do not have this problem).  Safe to call more than once.
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux"):
        return _tuned
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return _tuned
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
    log.debug("glibc allocator tuned for large tensors: %s", _tuned)
    return _tuned
