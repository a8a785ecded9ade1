"""The `transformer` command, run in-process with click's CliRunner on the fixtures."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from transformer.cli import main

VOCAB = Path(__file__).parent / "fixtures" / "gpt2-vocab"
REF = json.loads((VOCAB / "reference.json").read_text(encoding="utf-8"))
M = ["--model", str(VOCAB)]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_generate_greedy_json_equals_reference():
    result = run("generate", REF["prompts"][0], *M, "--greedy", "-n", "30", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["prompt_ids"] == REF["prompt_ids"][0]
    assert data["new_ids"] == REF["greedy_new_ids"]
    assert data["text"] == REF["greedy_text"]


def test_generate_streams_prompt_and_continuation():
    result = run("generate", REF["prompts"][0], *M, "--greedy", "-n", "30")
    assert result.exit_code == 0
    assert result.output == REF["prompts"][0] + REF["greedy_text"] + "\n"


def test_generate_seed_is_reproducible():
    a = run("generate", "Hello", *M, "--seed", "5", "-n", "8", "--json")
    b = run("generate", "Hello", *M, "--seed", "5", "-n", "8", "--json")
    assert a.exit_code == 0 and json.loads(a.output)["new_ids"] == json.loads(b.output)["new_ids"]
    assert len(json.loads(a.output)["new_ids"]) == 8


def test_generate_long_prompt_notice():
    result = CliRunner().invoke(main, ["generate", "word" + " word" * 199, *M, "-n", "5", "--json"])
    assert result.exit_code == 0
    assert "Notice: the prompt has 200 tokens; keeping the last 123" in result.stderr
    assert len(json.loads(result.stdout)["prompt_ids"]) == 123


def test_predict_long_prompt_uses_the_last_window():
    result = CliRunner().invoke(main, ["predict", "word" + " word" * 199, *M, "--json"])
    assert result.exit_code == 0
    assert "keeping the last 128 (the model's 128-token context window)" in result.stderr
    assert len(json.loads(result.stdout)["prompt_ids"]) == 128


def test_predict_top_k():
    result = run("predict", REF["prompts"][0], *M, "-k", "3", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)["next"]
    assert len(rows) == 3 and rows[0]["id"] == REF["greedy_new_ids"][0]
    assert rows[0]["probability"] >= rows[1]["probability"] >= rows[2]["probability"] > 0
    text = run("predict", REF["prompts"][0], *M, "-k", "2")
    header, *ranked = text.output.splitlines()
    assert text.exit_code == 0 and len(ranked) == 2 and header.startswith("next token after")


def test_perplexity_json_matches_reference(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(REF["text"], encoding="utf-8")
    result = run("perplexity", str(path), *M, "--window", "128", "--stride", "64", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["tokens"] == 224 and data["bytes"] == len(REF["text"].encode())
    assert data["nll"] == pytest.approx(REF["text_nll_w128_s64"], abs=1e-3)
    human = run("perplexity", str(path), *M, "--window", "128", "--stride", "64")
    assert "tokens 224" in human.output and "bits per byte" in human.output


def test_perplexity_with_a_short_context(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(REF["text"], encoding="utf-8")
    result = run("perplexity", str(path), *M, "--context", "4", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["tokens"], data["window"], data["stride"]) == (224, 5, 1)
    full = json.loads(run("perplexity", str(path), *M, "--window", "128", "--stride", "64", "--json").output)
    assert data["nll"] > full["nll"]  # seeing 4 tokens back predicts worse than seeing up to 127
    human = run("perplexity", str(path), *M, "--context", "4")
    assert "context 4: each token sees at most the 4 tokens before it" in human.output
    both = CliRunner().invoke(main, ["perplexity", str(path), *M, "--context", "4", "--window", "8"])
    assert both.exit_code == 1 and "not both" in both.stderr
    too_long = CliRunner().invoke(main, ["perplexity", str(path), *M, "--context", "500"])
    assert too_long.exit_code == 1 and "larger than the model's context window" in too_long.stderr


def test_inspect_prints_tokens_lens_attention_and_png(tmp_path):
    png = tmp_path / "att.png"
    result = run("inspect", REF["prompts"][0], *M, "-k", "2", "--png", str(png), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [t["id"] for t in data["tokens"]] == REF["prompt_ids"][0]
    assert data["tokens"][1]["token"] == ","
    assert len(data["logit_lens"]) == 3 and data["next"][0]["id"] == REF["greedy_new_ids"][0]
    assert len(data["attention"]) == 2 * 4
    assert png.read_bytes()[:4] == b"\x89PNG"
    human = run("inspect", "Hello", *M)
    assert "logit lens" in human.output and "layer  1 head  3" in human.output


def test_tokenize():
    result = run("tokenize", REF["prompts"][0], *M, "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["ids"] == REF["prompt_ids"][0]


@pytest.mark.parametrize("args,message", [
    (["generate", "   ", *M], "the prompt is empty"),
    (["predict", "", *M], "the prompt is empty"),
    (["predict", "hi", "--model", "no/such/folder"], "no such folder"),
    (["predict", "hi", "--model", "gpt2"], "download config.json, model.safetensors"),
    (["inspect", "hi", *M, "--layer", "7"], "--layer 7"),
    (["perplexity", "missing.txt", *M], "text file not found: missing.txt"),
])
def test_user_mistakes_are_one_line_errors(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_bad_text_files(tmp_path):
    empty, binary = tmp_path / "empty.txt", tmp_path / "bin.txt"
    empty.write_text("  \n")
    binary.write_bytes(b"\x00\x01\x02abc")
    for path, message in [(empty, "is empty"), (binary, "looks binary")]:
        result = CliRunner().invoke(main, ["perplexity", str(path), *M])
        assert result.exit_code == 1 and message in result.stderr


def test_help_has_examples():
    for command in ("generate", "predict", "perplexity", "inspect", "tokenize"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Example:" in result.output and "--model" in result.output


def test_the_bundled_model_generates_offline():
    """`--model bundled` is the small GPT-2 trained on the books, shipped with the package."""
    result = run("generate", "It was a dark and stormy", "--model", "bundled", "-n", "12", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert 0 < len(data["new_ids"]) <= 12 and all(0 <= i < 4096 for i in data["new_ids"])
    again = run("generate", "It was a dark and stormy", "--model", "bundled", "-n", "12", "--seed", "1", "--json")
    assert json.loads(again.stdout)["text"] == data["text"]  # the same seed, the same text
