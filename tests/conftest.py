"""Shared test fixtures: where ../shared is, and an isolated cache folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder (books, eval text, GPT-2 tokenizer files)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set SHARED_DIR)")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default model locations go to a temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def build_tiktoken(folder: Path, name: str):
    """tiktoken's Encoding built from GPT-2's encoder.json + vocab.bpe in `folder`, the
    reference our tokenizer is checked against (nothing is downloaded or cached)."""
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    from corpora.tokenizers.bpe import ENDOFTEXT, GPT2_SPLIT_PATTERN

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", "")  # read the files directly, cache nothing
        ranks = data_gym_to_mergeable_bpe_ranks(
            vocab_bpe_file=str(folder / "vocab.bpe"), encoder_json_file=str(folder / "encoder.json")
        )
    return tiktoken.Encoding(
        name=name, pat_str=GPT2_SPLIT_PATTERN, mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256}, explicit_n_vocab=50257,
    )


@pytest.fixture(scope="session")
def tiktoken_from_files():
    """`build_tiktoken`, for tests: tiktoken_from_files(folder, name) -> tiktoken.Encoding."""
    return build_tiktoken


def require_or_skip(reason: str) -> None:
    """Skip the calling test because something it needs is missing (`reason`, one line),
    unless TTT_REQUIRE_ALL=1 (set by CI): there a missing tool must fail, not skip."""
    if os.environ.get("TTT_REQUIRE_ALL") == "1":
        pytest.fail(f"TTT_REQUIRE_ALL=1 but {reason}", pytrace=False)
    pytest.skip(reason)
