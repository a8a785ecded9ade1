"""The `transformer` command offline and out of the box: `--model auto`, `tokenize` without
weights, labels naming the real tokenizer, and `--version`.

conftest.py sets HF_HUB_OFFLINE=1 and an empty cache, so `auto` means the bundled model.
"""
from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

import transformer.cli
from corpora.tokenizers.bpe import GPT2_TOKENIZER_DIR, BPETokenizer
from transformer import load_model
from transformer.cli import main
from transformer.weights import BUNDLED_MODEL, choose_auto_model

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"  # GPT-2's full vocabulary, tiny weights
OFFLINE_NOTICE = "Notice: GPT-2 small is not in the Hugging Face cache (offline); using the bundled model"
BUNDLED_LABEL = "books-gpt2's BPE, 4,096 tokens"
GPT2_LABEL = "GPT-2's BPE, 50,257 tokens"


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything loads a model's weights."""
    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(transformer.cli, "load_model", refuse)
    monkeypatch.setattr("transformer.weights.map_tensors", refuse)


# ------------------------------------------------------------------------ --model auto


def test_predict_works_offline_with_no_model_and_says_which() -> None:
    result = run("predict", "Hello", "-k", "3", "--json")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == OFFLINE_NOTICE + " trained on the default books"
    data = json.loads(result.stdout)
    assert data["model"] == "bundled" and data["tokenizer"] == BUNDLED_LABEL and len(data["next"]) == 3


@pytest.mark.parametrize("command", ["generate", "predict", "perplexity", "inspect"])
def test_every_model_command_defaults_to_auto(command: str) -> None:
    assert "[default: auto]" in run(command, "--help").output


def test_every_help_example_runs_offline(tmp_path: Path) -> None:
    """The examples of `transformer --help` and each command's help, with no --model."""
    text = tmp_path / "text.txt"
    text.write_text("It was a dark and stormy night; the rain fell in torrents.\n", encoding="utf-8")
    for args in (["generate", "It was a dark and stormy", "--seed", "1", "-n", "5"],
                 ["predict", "The capital of France is", "-k", "5"],
                 ["perplexity", text], ["perplexity", text, "--context", "4"],
                 ["inspect", "The Eiffel Tower is in the city of", "--png", tmp_path / "attention.png"],
                 ["tokenize", "Hello, world! naïve café"]):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)


def test_auto_is_decided_in_one_place_for_the_api_and_bench(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import models

    assert choose_auto_model(quiet=True) == ("bundled", BUNDLED_MODEL)
    model, tokenizer = load_model("auto")
    assert model.config.vocab_size == tokenizer.vocab_size == 4096
    assert OFFLINE_NOTICE in capsys.readouterr().err
    choice = models.transformer_model(models.AUTO)
    assert choice.bundled and choice.name == "bundled"
    assert capsys.readouterr().err.count("Notice:") == 1


# ------------------------------------------------------------ tokenize needs no weights


def test_tokenize_defaults_to_gpt2s_shipped_tokenizer(no_weights) -> None:
    result = run("tokenize", "Hello world", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ids"] == [15496, 995] and result.stderr == ""


def test_tokenize_reads_a_folder_of_openai_files_without_config_or_weights(tmp_path: Path, no_weights) -> None:
    for name in ("encoder.json", "vocab.bpe"):
        shutil.copy(GPT2_TOKENIZER_DIR / name, tmp_path / name)
    result = run("tokenize", "Hello world", "--model", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ids"] == [15496, 995] and data["tokenizer"] == GPT2_LABEL


def test_tokenize_reads_a_folder_of_hugging_face_files_without_config_or_weights(tmp_path: Path, no_weights) -> None:
    folder = tmp_path / "my-bpe"
    folder.mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(BUNDLED_MODEL / name, folder / name)
    text = "It was the best of times"
    result = run("tokenize", text, "--model", folder, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ids"] == BPETokenizer.from_dir(BUNDLED_MODEL).encode(text)
    assert data["tokenizer"] == "my-bpe's BPE, 4,096 tokens"


def test_tokenize_with_the_bundled_models_tokenizer(no_weights) -> None:
    result = run("tokenize", "Hello world", "--model", "bundled")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first == f"4 tokens ({BUNDLED_LABEL}), 11 bytes"
    ids = [int(line.split()[0]) for line in result.stdout.splitlines()[1:]]
    assert ids == BPETokenizer.from_dir(BUNDLED_MODEL).encode("Hello world")


def test_tokenize_folder_without_tokenizer_files_names_the_option(tmp_path: Path) -> None:
    result = run("tokenize", "Hello", "--model", tmp_path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: --model {tmp_path}: no tokenizer files there")


# ------------------------------------------------------------- labels name the tokenizer


def test_perplexity_labels_the_bundled_models_own_tokens(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text("It was a dark and stormy night; the rain fell in torrents.\n", encoding="utf-8")
    bundled = run("perplexity", text, "-m", "bundled")
    assert bundled.exit_code == 0, bundled.output
    assert f"({BUNDLED_LABEL}; compare only with the same tokenizer)" in bundled.stdout
    assert "GPT-2" not in bundled.stdout
    assert json.loads(run("perplexity", text, "-m", "bundled", "--json").stdout)["tokenizer"] == BUNDLED_LABEL
    gpt2 = run("perplexity", text, "-m", FIXTURE)
    assert f"({GPT2_LABEL}; compare only" in gpt2.stdout


@pytest.mark.parametrize("model,label", [("bundled", BUNDLED_LABEL), (str(FIXTURE), GPT2_LABEL)])
def test_predict_inspect_and_tokenize_name_the_tokenizer(model: str, label: str) -> None:
    predict = run("predict", "The cat sat on the", "-m", model, "-k", "2")
    assert predict.stdout.splitlines()[0].endswith(f"; {label}):")
    inspect = run("inspect", "The cat sat on the", "-m", model)
    assert f"; {label}):" in inspect.stdout.splitlines()[1]
    tokenize = run("tokenize", "The cat sat on the", "-m", model)
    assert f"({label})" in tokenize.stdout.splitlines()[0]
    for output in (predict.stdout, inspect.stdout, tokenize.stdout):
        assert "GPT-2 BPE tokens" not in output


# -------------------------------------------------------------------------- --version


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"], prog_name="transformer")
    assert result.exit_code == 0
    assert result.output.strip() == f"transformer {version('trie-vs-transformer')}"
