"""The readable reference forward pass (transformer/reference.py) against the fast one."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from transformer import reference
from transformer.config import GPT2Config
from transformer.model import GPT2
from transformer.weights import check_tensors, map_tensors

FIXTURES = Path(__file__).parent / "fixtures"


def checkpoint_tensors(folder: Path) -> tuple[GPT2Config, dict[str, np.ndarray]]:
    config = GPT2Config.from_json(folder / "config.json")
    path = folder / "model.safetensors"
    return config, check_tensors(map_tensors(path), config, str(path))


@pytest.mark.parametrize("name", ["gpt2-tiny", "gpt2-vocab"])
def test_reference_forward_equals_the_fast_one(name):
    config, tensors = checkpoint_tensors(FIXTURES / name)
    model = GPT2.from_dir(FIXTURES / name)
    rng = np.random.default_rng(0)
    for length in (1, 7, min(40, config.n_ctx)):
        ids = rng.integers(0, config.vocab_size, length)
        fast, _ = model.forward(ids, all_positions=True)
        slow = reference.gpt2(ids, tensors, config)
        assert slow.shape == fast.shape == (length, config.vocab_size)
        np.testing.assert_allclose(fast, slow, atol=1e-5, rtol=0, err_msg=f"{name}, {length} positions")


def test_reference_matches_the_recorded_transformers_logits():
    config, tensors = checkpoint_tensors(FIXTURES / "gpt2-tiny")
    with np.load(FIXTURES / "gpt2-tiny" / "reference.npz", allow_pickle=False) as data:
        ids, expected = data["full_ids"], data["full_logits"]
    np.testing.assert_allclose(reference.gpt2(ids, tensors, config), expected, atol=1e-4, rtol=0)
