"""The `transformer` command's manners: arguments checked before any model loads, errors
that name the option, Ctrl-C, long prompts, bounded attention images, plurals, help text."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import transformer.cli
from transformer.cli import main

FIXTURE = Path(__file__).parent / "fixtures" / "gpt2-vocab"  # 2 layers, 4 heads, 128-token window
M = ["--model", str(FIXTURE)]
LONG_PROMPT = "word" + " word" * 199  # 200 tokens, more than the fixture's window


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result) -> str:
    """The single `Error: ...` line of a refused command."""
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a crash
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# ------------------------------------------------------------- checked before loading


@pytest.fixture
def loading_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to load a model's weights fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(transformer.cli, "load_model", refuse)


@pytest.mark.parametrize("args,message", [
    (["perplexity", "missing.txt"], "text file not found: missing.txt"),
    (["perplexity", "{tmp}"], "is a folder, not a text file"),
    (["perplexity", "{text}", "--window", "5000"], "--window 5000 is larger than the model's context window (128)"),
    (["perplexity", "{text}", "--window", "64", "--stride", "64"], "--stride (64) must be smaller than --window (64)"),
    (["perplexity", "{text}", "--context", "500"], "--context 500 is larger than the model's context window (128)"),
    (["perplexity", "{text}", "--context", "4", "--stride", "2"], "give either --context or --window/--stride"),
    (["generate", "  "], "the prompt is empty"),
    (["predict", ""], "the prompt is empty"),
    (["inspect", "\n"], "the prompt is empty"),
    (["inspect", "hi", "--layer", "2"], "--layer 2: the model has layers 0..1"),
    (["inspect", "hi", "--png", "{tmp}/no/such/folder/a.png"], "--png {tmp}/no/such/folder/a.png: the folder"),
    (["inspect", "hi", "--png", "{tmp}"], "--png {tmp} is a folder"),
])
def test_mistakes_are_refused_before_the_model_loads(args, message, tmp_path: Path, loading_fails) -> None:
    text = tmp_path / "text.txt"
    text.write_text("Some text to score.\n", encoding="utf-8")
    args = [a.format(tmp=tmp_path, text=text) for a in args]
    line = one_line_error(run(*args, *M))
    assert message.format(tmp=tmp_path) in line


def test_a_missing_model_folder_names_the_option() -> None:
    assert "--model 'no/such/folder': no such folder" in one_line_error(run("predict", "hi", "--model", "no/such/folder"))


# -------------------------------------------------------------------------- Ctrl-C


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("phase", ["load_model", "top_next_tokens"])
def test_ctrl_c_in_predict_is_one_line_and_exit_130(phase: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transformer.cli, phase, interrupt)
    result = run("predict", "Hello", *M)
    assert result.exit_code == 130
    assert result.stderr == "Interrupted; nothing was written.\n"


def test_ctrl_c_while_generating_ends_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def two_tokens_then_ctrl_c(*args, **kwargs):
        yield 11  # ","
        yield 290  # " and"
        raise KeyboardInterrupt

    monkeypatch.setattr(transformer.cli, "generate_ids", two_tokens_then_ctrl_c)
    result = run("generate", "Hello", *M)
    assert result.exit_code == 130
    assert result.stdout == "Hello, and\n"
    assert result.stderr == "Interrupted; nothing was written.\n"


@pytest.mark.parametrize("phase", ["attention_maps", "savefig"])
def test_ctrl_c_while_drawing_leaves_no_file(phase: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    def half_written_then_ctrl_c(self, handle, **kwargs):
        handle.write(b"\x89PNG half an image")
        raise KeyboardInterrupt

    if phase == "savefig":
        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_written_then_ctrl_c)
    else:
        monkeypatch.setattr(transformer.cli, phase, interrupt)
    result = run("inspect", "Hello there", *M, "--png", tmp_path / "attention.png")
    assert result.exit_code == 130 and result.stderr == "Interrupted; nothing was written.\n"
    assert list(tmp_path.iterdir()) == []  # neither the PNG nor a temporary part of it


# --------------------------------------------------------------------- long prompts


@pytest.mark.parametrize("command,kept", [("generate", 123), ("predict", 128), ("inspect", 128)])
def test_every_command_says_when_the_prompt_was_cut(command: str, kept: int) -> None:
    args = [command, LONG_PROMPT, *M] + (["-n", "5"] if command == "generate" else [])
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert f"Notice: the prompt has 200 tokens; keeping the last {kept} " in result.stderr


def test_long_prompts_are_shown_with_the_middle_cut_out() -> None:
    prompt = "It was the best of times, " + "and so on " * 100 + "it was the age of foolishness"
    predict = run("predict", prompt, *M, "-k", "1")
    header = predict.stdout.splitlines()[0]
    assert " … " in header and "It was the best" in header and "age of foolishness" in header
    assert len(header) < 300
    inspect = run("inspect", prompt, *M)
    shown = inspect.stdout.splitlines()[0]
    assert shown.startswith('prompt: "It was the best') and " … " in shown and len(shown) < 220
    generate = run("generate", prompt, *M, "-n", "3", "--greedy")
    assert generate.stdout.startswith("It was the best") and " … " in generate.stdout.splitlines()[0]
    assert generate.stdout.count("and so on") < 20


def test_short_prompts_are_shown_whole() -> None:
    predict = run("predict", "The cat sat", *M, "-k", "1")
    assert predict.stdout.splitlines()[0].startswith('next token after "The cat sat"  (3 tokens seen;')


# ---------------------------------------------------------------- attention images


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_inspect_png_draws_at_most_the_last_64_positions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    colour_bars = []
    real_colorbar = matplotlib.figure.Figure.colorbar

    def spy(self, *args, **kwargs):
        colour_bars.append(kwargs.get("label"))
        return real_colorbar(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "colorbar", spy)
    long_png, short_png = tmp_path / "long.png", tmp_path / "short.png"
    long = run("inspect", LONG_PROMPT, *M, "--png", long_png)
    assert long.exit_code == 0, long.output
    assert f"attention heatmaps (the last 64 of 128 positions) written to {long_png}" in long.stdout
    short = run("inspect", "word" + " word" * 63, *M, "--png", short_png)  # exactly 64 tokens
    assert f"attention heatmaps (64 positions) written to {short_png}" in short.stdout
    assert png_size(long_png) == png_size(short_png)  # the image stops growing at 64 positions
    width, height = png_size(long_png)
    assert width < 4000 and height < 2500
    assert colour_bars == ["attention weight", "attention weight"]


# ------------------------------------------------------------- words and help text


def test_plurals() -> None:
    one = run("tokenize", "a")
    assert one.stdout.splitlines()[0] == "1 token (GPT-2's BPE, 50,257 tokens), 1 byte"
    two = run("tokenize", "a b")
    assert two.stdout.splitlines()[0] == "2 tokens (GPT-2's BPE, 50,257 tokens), 3 bytes"
    predict = run("predict", "Hello", *M, "-k", "1")
    assert "(1 token seen;" in predict.stdout


def test_temperature_help_says_what_it_does() -> None:
    text = " ".join(run("generate", "--help").output.split())
    assert "lower: more predictable, higher: more varied" in text
    assert "bolder" not in text and "wilder" not in text
