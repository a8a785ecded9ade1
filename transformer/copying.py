"""In-context copying: a random token sequence shown twice.

The experiment behind "induction heads" (Olsson et al. 2022). The first copy of random
tokens is unpredictable (about log(vocabulary) nats a token); the second can be read off
the first by a model that has learned to copy ("after A came B last time, so B again").
Used by `bench induction` and by training, which measures it at every evaluation so the
moment a model learns to copy shows up on its learning curve.

    ids = <|endoftext|> x1 .. xL x1 .. xL      (x drawn uniformly from `pool`, a fixed seed)
"""
from __future__ import annotations

import numpy as np


def repeated_sequences(pool: np.ndarray, eot_id: int, length: int, repeats: int, seed: int) -> np.ndarray:
    """(repeats, 1 + 2·length) ids: <|endoftext|>, then `length` random ids from `pool` twice."""
    rng = np.random.default_rng(seed)
    halves = np.asarray(pool)[rng.integers(0, len(pool), size=(repeats, length))]
    front = np.full((repeats, 1), eot_id, dtype=np.int64)
    return np.concatenate([front, halves, halves], axis=1)


def copy_means(losses: np.ndarray, length: int) -> tuple[float, float]:
    """Mean loss over the first copy's targets (1..L) and the second's (L+1..2L), from the
    per-target losses of one sequence (target t = ids[t + 1])."""
    return float(losses[:length].mean()), float(losses[length:2 * length].mean())


COPY_LENGTH = 60  # random tokens in each copy, as `bench induction` shows them
COPY_REPEATS = 8  # sequences averaged over at every training evaluation


def training_copy_set(vocab_size: int, eot_id: int | None, ctx: int) -> np.ndarray | None:
    """The fixed sequences training measures copying on (the same at every evaluation, seed 0):
    any id but <|endoftext|>, each copy as long as fits twice in `ctx` (at most COPY_LENGTH);
    None when the context is too short to show anything twice."""
    length = min(COPY_LENGTH, (ctx - 1) // 2)
    if length < 2:
        return None
    pool = np.array([i for i in range(vocab_size) if i != eot_id])
    return repeated_sequences(pool, eot_id if eot_id is not None else int(pool[0]), length, COPY_REPEATS, seed=0)
