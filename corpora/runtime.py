"""Process tuning: the few knobs outside the ideas that make them fast on a real machine.

None of these changes a result; each only changes how the process uses the machine:
BLAS threads (`set_blas_threads`), glibc's allocator (`keep_freed_memory_for_reuse`)
and Python's cycle collector (`gc_paused`).
"""
from __future__ import annotations

import contextlib
import gc
import sys
from pathlib import Path
from typing import Iterator


def set_blas_threads(n: int) -> bool:
    """Make NumPy's OpenBLAS use `n` threads from now on (what the environment variable
    OPENBLAS_NUM_THREADS does at start-up, but at run time).

    Why: on a machine whose cores are busy with other work, BLAS threads keep waiting
    for each other at every one of the thousands of small matmuls in a step, and two
    threads can be many times *slower* than one. `transformer train --threads 1` avoids
    that. Finds the OpenBLAS library this process has loaded and calls its
    set_num_threads function; returns False if there is none (another BLAS, or not Linux).
    """
    import ctypes

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    libraries = sorted({line.split()[-1] for line in maps.splitlines()
                        if "openblas" in line.lower() and line.split()[-1].startswith("/")})
    names = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
             "openblas_set_num_threads64_", "openblas_set_num_threads")
    for path in libraries:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            function = getattr(library, name, None)
            if function is not None:
                function(ctypes.c_int(n))
                return True
    return False


def keep_freed_memory_for_reuse() -> bool:
    """Ask glibc's malloc to keep large freed blocks instead of returning them to the OS.

    Every training step allocates the same ~100 MB of activations and frees them again.
    By default glibc gives blocks this big back to the operating system at once, so the
    next step touches brand-new pages and pays a page fault for every 4 KB (about a
    quarter of the step time for the benchmark model). Raising the mmap and trim
    thresholds lets the next step reuse the same memory. PyTorch's caching allocator
    does the same job. Affects this process only; does nothing outside glibc (Linux).
    Returns True if the setting was applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        largest_heap_block = 32 * 1024 * 1024  # glibc's maximum mmap threshold on 64-bit
        return bool(libc.mallopt(m_mmap_threshold, largest_heap_block)
                    and libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)
                    and libc.mallopt(m_top_pad, 64 * 1024 * 1024))
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while creating millions of nodes (none form cycles).

    Without this, the collector rescans the growing trie again and again: it nearly
    doubles build and load times. Afterwards everything alive is frozen (`gc.freeze`):
    moved where later collections never look, or the first few collections after a
    load would each walk all the trie's dicts again (over a second each, at order 5).
    The nodes are still freed as usual when the model goes (by reference counting).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
