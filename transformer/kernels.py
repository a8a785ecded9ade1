"""Small helpers that make model.py's element-wise passes cheap: blocks that stay in cache.

NumPy runs each ufunc as one pass over its whole array. GELU is eight such passes; on a
(512, 3072) float32 MLP activation (6 MB) every pass goes out to L3 or memory. Run the
same passes over a block of rows that fits in the core's L2 cache and only the first
pass reads memory: the rest hit the cache. Same arithmetic, same order, same result.

    row_blocks(n_rows, row_bytes)   slices of rows of about BLOCK_BYTES each
    upper_triangle(n)               the (n, n) causal mask, made once per size
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterator

import numpy as np

#: A block's bytes: well inside a core's L2 cache (1-2 MB on current x86 server cores),
#: so the several arrays one block's passes touch all stay there.
BLOCK_BYTES = 256 * 1024


def row_blocks(n_rows: int, row_bytes: int, budget: int | None = None) -> Iterator[slice]:
    """Slices covering rows 0..n_rows-1, each of about `budget` bytes (BLOCK_BYTES by
    default), and at least one row.

    Example: list(row_blocks(5, 100_000, 250_000)) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    """
    step = max(1, (budget or BLOCK_BYTES) // max(1, row_bytes))
    for lo in range(0, n_rows, step):
        yield slice(lo, min(lo + step, n_rows))


@lru_cache(maxsize=64)
def upper_triangle(n: int) -> np.ndarray:
    """(n, n) booleans, True strictly above the diagonal: where query row i would look at
    a later key j > i. Cached (read-only), as attention asks for the same few sizes."""
    mask = np.triu(np.ones((n, n), dtype=bool), 1)
    mask.setflags(write=False)
    return mask
