"""`transformer train` through click's CliRunner, on a tiny corpus in tmp_path."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import transformer.train as train_module
from transformer.backward import model_forward
from transformer.model import load_model
from corpora.runtime import set_blas_threads
from transformer.train import CHECKPOINT_FILE, load_checkpoint
from corpora.common import UserError
from transformer.train_cli import train

WORDS = ("the a cat dog sat ran on under mat log house garden little old man woman child said "
         "and then quickly slowly happy sad morning evening light dark river hill").split()
TINY_ARGS = ["--layers", "1", "--heads", "2", "--dim", "16", "--ctx", "16", "--vocab", "300",
             "--batch", "4", "--lr", "3e-3", "--warmup", "2", "--eval-every", "4", "--eval-batches", "2",
             "--no-progress"]


def write_corpus(folder: Path, sentences: int = 400) -> Path:
    """Two small "books" of pseudo-English sentences (deterministic)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for book in ("one", "two"):
        lines = [" ".join(rng.choice(WORDS, rng.integers(4, 10))).capitalize() + "." for _ in range(sentences)]
        (folder / f"{book}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def invoke(*args: str):
    return CliRunner().invoke(train, [str(a) for a in args])


def test_train_writes_a_model_that_loads_and_generates(corpus, tmp_path):
    out = tmp_path / "model"
    result = invoke(corpus, "-o", out, *TINY_ARGS, "--steps", "12")
    assert result.exit_code == 0, result.output
    assert "Done: 12 steps" in result.output and "held-out loss" in result.output
    assert {"config.json", "model.safetensors", "vocab.json", "merges.txt", "training.json",
            CHECKPOINT_FILE} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "training.json").read_text())
    assert summary["steps_done"] == 12 and summary["tokens_seen"] == 12 * 4 * 16
    assert summary["model"]["n_layer"] == 1 and summary["model"]["vocab_size"] == 300
    assert [e[0] for e in summary["evals"]] == [4, 8, 12]
    assert summary["evals"][-1][1] < summary["evals"][0][1]
    assert [d["name"] for d in summary["corpus"]["documents"]] == ["one.txt", "two.txt"]
    assert summary["command"].startswith("transformer train ") and "--vocab 300" in summary["command"]
    assert summary["train_tokens"] > summary["heldout_tokens"] > 0

    model, tokenizer = load_model(str(out))
    assert model.config.vocab_size == tokenizer.vocab_size == 300 and tokenizer.eot_id == 299
    state, config, _, _ = load_checkpoint(out)
    ids = np.array([tokenizer.encode("The cat sat on the mat.")])
    expected, _ = model_forward(state.params, config, ids)
    got, _ = model.forward(ids[0], all_positions=True)
    np.testing.assert_allclose(got, expected[0], rtol=1e-5, atol=1e-6)

    from transformer.cli import main

    generated = CliRunner().invoke(main, ["generate", "The cat", "--model", str(out), "-n", "5", "--seed", "1"])
    assert generated.exit_code == 0, generated.output
    assert generated.output.startswith("The cat")


def test_ctrl_c_saves_and_resume_matches_an_uninterrupted_run(corpus, tmp_path, monkeypatch):
    whole = invoke(corpus, "-o", tmp_path / "whole", *TINY_ARGS, "--steps", "10")
    assert whole.exit_code == 0, whole.output

    real_step = train_module.train_step

    def step_then_ctrl_c(state, *args):
        out = real_step(state, *args)
        if state.step == 6:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does
        return out

    monkeypatch.setattr(train_module, "train_step", step_then_ctrl_c)
    stopped = invoke(corpus, "-o", tmp_path / "parts", *TINY_ARGS, "--steps", "10")
    monkeypatch.setattr(train_module, "train_step", real_step)
    assert stopped.exit_code == 130, stopped.output
    assert "Interrupted after step 6; checkpoint saved" in stopped.output
    assert load_checkpoint(tmp_path / "parts")[0].step == 6

    again = invoke(corpus, "-o", tmp_path / "parts", *TINY_ARGS, "--steps", "10")
    assert again.exit_code == 1 and "add --resume" in again.output

    resumed = invoke(corpus, "-o", tmp_path / "parts", "--resume", "--no-progress")  # settings from the checkpoint
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "parts" / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    a = json.loads((tmp_path / "whole" / "training.json").read_text())
    b = json.loads((tmp_path / "parts" / "training.json").read_text())
    assert a["evals"] == b["evals"] and a["train_losses_every_10_steps"] == b["train_losses_every_10_steps"]

    done = invoke(corpus, "-o", tmp_path / "parts", "--resume", "--no-progress")
    assert done.exit_code == 0 and "nothing to do" in done.output

    segments = b["segments"]  # every run that trained is one segment, in order
    assert [(s["number"], s["from_step"], s["to_step"]) for s in segments] == [(1, 0, 6), (2, 6, 10)]
    assert all(s["seconds"] >= 0 and s["ended_utc"] >= s["started_utc"] for s in segments)
    assert "--resume" in segments[1]["command"] and "--resume" not in segments[0]["command"]
    assert all(s["machine"]["cpus"] >= 1 and s["code"] for s in segments)
    assert [(s["from_step"], s["to_step"]) for s in a["segments"]] == [(0, 10)]


def test_resume_refuses_other_settings_and_changed_text(tmp_path):
    corpus = write_corpus(tmp_path / "books")
    out = tmp_path / "model"
    assert invoke(corpus, "-o", out, *TINY_ARGS, "--steps", "4").exit_code == 0
    result = invoke(corpus, "-o", out, "--resume", "--lr", "0.01", "--layers", "1", "--dim", "32",
                    "--heldout-fraction", "0.1")
    assert result.exit_code == 1
    assert "--dim 32 (the checkpoint has 16)" in result.output and "--lr 0.01 (the checkpoint has 0.003)" in result.output
    assert "--heldout-fraction 0.1 (the checkpoint has 0.05)" in result.output
    assert "--layers" not in result.output  # the same value is fine
    (corpus / "two.txt").write_text("Something else entirely.\n" * 50, encoding="utf-8")
    result = invoke(corpus, "-o", out, "--resume")
    assert result.exit_code == 1 and "two.txt has changed since training started" in result.output
    result = invoke(tmp_path / "nowhere", "-o", tmp_path / "fresh", "--resume")
    assert result.exit_code == 1 and "nothing to resume" in result.output


def test_resume_refuses_data_that_tokenizes_differently():
    from types import SimpleNamespace

    from transformer.train_cli import check_same_tokens

    record = {"train_tokens": 100, "heldout_tokens": 10}
    check_same_tokens(SimpleNamespace(train=[0] * 100, heldout=[0] * 10), record)  # the same: fine
    with pytest.raises(UserError, match="held-out text is 11 tokens now but was 10"):
        check_same_tokens(SimpleNamespace(train=[0] * 100, heldout=[0] * 11), record)
    with pytest.raises(UserError, match="training text is 99 tokens now but was 100"):
        check_same_tokens(SimpleNamespace(train=[0] * 99, heldout=[0] * 10), record)


def test_given_tokenizer_is_used(corpus, tmp_path):
    first = tmp_path / "first"
    assert invoke(corpus, "-o", first, *TINY_ARGS, "--steps", "2").exit_code == 0
    args = [a for a in TINY_ARGS if a not in ("--vocab", "300")]
    try:
        result = invoke(corpus, "-o", tmp_path / "second", *args, "--steps", "2", "--tokenizer", first, "--threads", "1")
    finally:
        set_blas_threads(os.cpu_count() or 1)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "second" / "merges.txt").read_bytes() == (first / "merges.txt").read_bytes()
    result = invoke(corpus, "-o", tmp_path / "third", "--vocab", "400", "--tokenizer", first)
    assert result.exit_code == 1 and "--vocab 400 does not match --tokenizer" in result.output


@pytest.mark.parametrize("args, message", [
    (["--vocab", "256"], "--vocab must be at least 257"),
    (["--vocab", "5000"], "vocab size 5000 is too large for this text"),
    (["--ctx", "64", "--positions", "32"], "--ctx 64 is larger than the model's context window (--positions 32)"),
    (["--ctx", "50000", "--vocab", "300"], "--ctx 50000 is larger than the training text, which has only"),
    (["--batch", "500", "--vocab", "300"], "fewer than one batch (--batch 500 x --ctx 128)"),
    (["--dim", "30", "--heads", "4", "--vocab", "300"], "--dim 30 is not divisible by --heads 4"),
])
def test_bad_options_are_one_line_errors(corpus, tmp_path, args, message):
    result = invoke(corpus, "-o", tmp_path / "model", "--no-progress", *args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_empty_and_tiny_corpora(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("  \n\n", encoding="utf-8")
    result = invoke(empty, "-o", tmp_path / "m1", "--no-progress")
    assert result.exit_code == 1 and "no readable text" in result.output
    tiny = write_corpus(tmp_path / "tiny", sentences=3)
    result = invoke(tiny, "-o", tmp_path / "m2", "--vocab", "257", "--ctx", "500", "--no-progress")
    assert result.exit_code == 1 and "larger than the training text" in result.output
    result = invoke(tiny, "-o", tmp_path / "m3", "--vocab", "257", "--ctx", "16", "--no-progress")
    assert result.exit_code == 1 and "fewer than one batch" in result.output


def test_nan_loss_is_a_clear_error_and_keeps_the_checkpoint(corpus, tmp_path):
    import re

    out = tmp_path / "blown"
    blown = invoke(corpus, "-o", out, *TINY_ARGS, "--steps", "50", "--lr", "1e30", "--warmup", "0",
                   "--eval-every", "1")
    assert blown.exit_code == 1
    error = blown.output.strip().splitlines()[-1]
    found = re.match(r"Error: the loss became (nan|inf) at step (\d+); training stopped and "
                     r"the last good checkpoint \(step (\d+)\) is kept in .*Try a smaller --lr", error)
    assert found, error
    bad_step, kept_step = int(found.group(2)), int(found.group(3))
    assert kept_step == bad_step - 1  # checkpoints every step here
    state = load_checkpoint(out)[0]
    assert state.step == kept_step and all(np.isfinite(p).all() for p in state.params.values())


def test_output_must_be_new_or_empty(corpus, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine", encoding="utf-8")
    result = invoke(corpus, "-o", tmp_path / "full", *TINY_ARGS)
    assert result.exit_code == 1 and "is not empty" in result.output


def test_train_and_bpe_are_transformer_subcommands():
    from transformer.cli import main

    listing = CliRunner().invoke(main, ["--help"])
    assert listing.exit_code == 0 and "train" in listing.output and "bpe" in listing.output
    helped = CliRunner().invoke(main, ["train", "--help"])
    assert helped.exit_code == 0 and "Example" in helped.output and "--resume" in helped.output
