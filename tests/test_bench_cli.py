"""bench's command line: arguments checked before any model loads, one-line errors, Ctrl-C
that leaves nothing behind, aligned tables, elided prompts, plurals, --version."""
from __future__ import annotations

import json
import os
import re
import signal
from importlib import metadata
from pathlib import Path

import pytest

from bench import compare as comparing
from bench import models, plots
from bench import report as reporting
from bench.speed import SpeedReport, render_speed
from corpora.documents import read_text_argument
from test_bench import FIXTURE, books, invoke, ngram, ngram_file  # noqa: F401 (fixtures shared with test_bench)


@pytest.fixture
def no_models(monkeypatch):
    """Loading either model fails the test: every argument must be checked first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(models, "ngram_model", refuse)
    monkeypatch.setattr(models, "transformer_model", refuse)


def assert_refused(out, message: str, code: int = 1) -> None:
    """A refusal (not a crash, not a model load): exit `code`, `message`, one line for code 1."""
    assert isinstance(out.exception, SystemExit), f"not a refusal: {out.exception!r}"
    assert out.exit_code == code, out.output
    assert message in out.output and "Traceback" not in out.output
    if code == 1:
        assert out.output.count("\n") == 1, out.output


# --------------------------------------------------------- checked before loading


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "x", "--transformer", "./no/such/folder"], "--transformer './no/such/folder': no such folder"),
        (["compare", "x", "--transformer", "no-such-model-anywhere"], "--transformer"),
        (["perplexity", "--transformer", "bench/prompts.txt"], "--transformer 'bench/prompts.txt' is a file"),
        (["report", "--no-speed", "--transformer", "./nope"], "--transformer './nope': no such folder"),
        (["speed", "--transformer", "./nope"], "--transformer './nope': no such folder"),
    ],
)
def test_a_bad_transformer_is_refused_by_its_own_name_before_anything_loads(args, message, no_models):
    out = invoke(*args)
    assert_refused(out, message)
    assert "--model" not in out.output  # bench's option is --transformer


@pytest.mark.parametrize(
    "args, message",
    [
        (["compare", "x", "--ngram", "missing.json.gz"], "--ngram missing.json.gz: no such model"),
        (["compare", "x", "--ngram", "bench"], "--ngram bench is a folder but not an n-gram model"),
        (["perplexity", "--text", "missing.txt"], "text file not found: missing.txt"),
        (["report", "--no-speed", "--text", "missing.txt"], "text file not found: missing.txt"),
        (["perplexity", "--text", "README.md", "--dataset", "wikitext"], "not both"),
        (["perplexity", "--orders", "two"], "--orders 'two': write e.g. 1-5 or 2,3,5"),
        (["perplexity", "--orders", "0-3"], "--orders '0-3': orders start at 1"),
        (["perplexity", "--orders", "5-3"], "--orders '5-3' names no order"),
        (["speed", "--orders", "2-11"], "--orders '2-11': bench speed builds orders 1..10"),
        (["speed", "--corpus", "no/such/books"], "--corpus no/such/books: no such folder"),
        (["report", "-o", "README.md", "--no-speed"], "README.md is a file"),
        (["report", "-o", "README.md/report", "--no-speed"], "cannot make the report folder README.md/report"),
        (["compare", "x", "--prompts", "missing.txt"], "give one PROMPT"),
        (["compare", "--prompts", "missing.txt"], "text file not found: missing.txt"),
    ],
)
def test_bad_arguments_are_refused_before_anything_loads(args, message, no_models):
    assert_refused(invoke(*args), message)


@pytest.mark.parametrize("value", ["1.5", "-0.1", "half"])
def test_a_bad_mix_value_is_refused_before_anything_loads(value, no_models):
    assert_refused(invoke("perplexity", "--mix", value), "--mix", code=2)


def test_orders_the_model_lacks_are_refused_before_the_transformer_loads(ngram_file, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the transformer was loaded before --orders was checked")

    monkeypatch.setattr(models, "transformer_model", refuse)
    out = invoke("perplexity", "--orders", "2-4", "--ngram", ngram_file, "--transformer", FIXTURE)
    assert_refused(out, "--orders '2-4': the n-gram model has orders 1..3")


def test_a_text_file_is_read_by_the_one_reader(tmp_path):
    from bench import perplexity as ppl

    path = tmp_path / "eval.txt"
    path.write_bytes("\ufeffThe cat sat.\r\nThe dog ran.\r\n\r\nThe end.\r\n".encode("utf-8"))
    text = ppl.text_from_file(path)
    assert text.text == "The cat sat.\nThe dog ran.\n\nThe end."  # the final line break ends a line, not the text
    assert text.text == read_text_argument(path).removesuffix("\n") and not text.truncated
    cut = ppl.text_from_file(path, max_words=4)
    assert (cut.text, cut.truncated) == ("The cat sat.\nThe", True)


# ---------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_while_loading_is_one_line_and_exit_130(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "ngram_model", interrupted)
    out = invoke("compare", "The cat sat on the", "--transformer", FIXTURE)
    assert out.exit_code == 130 and out.output == "Interrupted; nothing was written.\n"


@pytest.fixture(scope="module")
def small_report(ngram_file):
    """A real report on the tiny models: one prompt, no speed, no mixture."""
    from bench import perplexity as ppl

    model = models.ngram_model(ngram_file)
    choice = models.transformer_model(str(FIXTURE))
    text = ppl.EvalText("The cat sat on the mat. The dog was dark.", "probe")
    return reporting.build_report(model, Path(ngram_file), choice, text, "bench report", ["The cat sat on the"],
                                  speed=False, mix=False, ablation="none", progress=False)


def interrupt_while_drawing(monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "perplexity_vs_order", interrupted)


def test_an_interrupted_report_leaves_no_folder(small_report, ngram_file, tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "build_report", lambda *args, **kwargs: small_report)
    interrupt_while_drawing(monkeypatch)
    target = tmp_path / "reports" / "new"
    out = invoke("report", "-o", target, "--ngram", ngram_file, "--transformer", FIXTURE, "--no-progress")
    assert out.exit_code == 130 and out.output == "Interrupted; nothing was written.\n"
    assert not (tmp_path / "reports").exists()


def test_an_interrupted_report_leaves_the_old_one_untouched(small_report, tmp_path, monkeypatch):
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "report.md").write_text("the old report", encoding="utf-8")
    interrupt_while_drawing(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        reporting.write_report(small_report, folder)
    assert [p.name for p in folder.iterdir()] == ["report.md"]
    assert (folder / "report.md").read_text(encoding="utf-8") == "the old report"


def test_ctrl_c_while_the_files_are_put_in_place_does_not_leave_half_a_report(small_report, tmp_path, monkeypatch):
    copy = reporting.shutil.copyfileobj

    def ctrl_c_then_copy(source, target):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in the middle of putting the files in place
        copy(source, target)

    monkeypatch.setattr(reporting.shutil, "copyfileobj", ctrl_c_then_copy)
    folder = tmp_path / "report"
    handler = signal.getsignal(signal.SIGINT)
    try:
        reporting.write_report(small_report, folder)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C stopped the report halfway: " + ", ".join(sorted(p.name for p in folder.iterdir())))
    assert sorted(p.name for p in folder.iterdir()) == ["next_word.png", "perplexity_vs_order.png", "report.json", "report.md"]
    assert json.loads((folder / "report.json").read_text(encoding="utf-8"))["files"] == small_report.files
    assert signal.getsignal(signal.SIGINT) is handler  # Ctrl-C works again afterwards


# ------------------------------------------------------------------- output


def comparison(prompt: str, context_count: int, notes: list[str]) -> comparing.Comparison:
    """A comparison made by hand, to test the rendering alone."""
    word = comparing.WordProbability("mat", 0.5, 1)
    ngram_column = comparing.NgramColumn("3-gram, Kneser-Ney", [word], ["on", "the"], 3, context_count, None, "mat.", 0.001)
    transformer_column = comparing.TransformerColumn("tiny", [word], 0.9, 1, [(" mat", 0.5)], "mat.", 0.01, 1, notes=notes)
    return comparing.Comparison(prompt, 1, ngram_column, transformer_column)


LONG_PROMPT = "It was the best of times, it was the worst of times. " * 20 + "The cat sat on the"


def test_long_prompts_are_shown_with_the_middle_cut_out():
    note = "the prompt has 300 tokens; the transformer reads only the last 232 (its window)"
    c = comparison(LONG_PROMPT, 1, [note])
    text = comparing.render_text(c)
    first = text.splitlines()[0]
    assert first.startswith("Prompt: It was the best") and first.endswith("The cat sat on the") and " … " in first
    assert len(first) <= len("Prompt: ") + 120
    assert all(len(line) < 200 for line in text.splitlines())
    assert f"Note: {note}" in text
    table = comparing.render_table([c, comparison("The cat sat on the", 1, [])])
    assert all(len(line) < 250 for line in table.splitlines())
    assert note in table  # the table says what the transformer left out, too
    markdown = comparing.render_markdown(c)
    assert note in markdown and len(markdown.splitlines()[0]) < 140


def test_counts_are_written_with_the_right_plural():
    one = comparing.render_text(comparison("The cat sat on the", 1, []))
    assert "context seen 1 time)" in one and "(1 prompt token, 1 word continued)" in one
    assert "1 unfinished word continued" in one
    many = comparing.render_text(comparison("The cat sat on the", 6, []))
    assert "context seen 6 times)" in many
    assert "seen 1 time)" in comparing.render_markdown(comparison("The cat sat on the", 1, []))


def test_the_speed_table_is_aligned():
    row = {"order": 2, "build_seconds": 1.25, "build_tokens_per_second": 1234567.0, "build_peak_mb": 80.0, "nodes": 12345,
           "file_mb": 1.5, "load_seconds": 0.05, "latency_median_ms": 0.012, "latency_p95_ms": 0.05,
           "generate_tokens_per_second": 9000.0}
    wide = {**row, "order": 10, "build_seconds": 123.4, "nodes": 123456789, "latency_median_ms": 12.5, "latency_p95_ms": 130.25}
    report = SpeedReport(machine={}, ngram=[row, wide], transformer={
        "model": "tiny", "load_seconds": 0.1, "first_prediction_seconds": 0.2, "loaded_mb": 10.0,
        "latency_median_ms": {"1": 1.0}, "latency_p95_ms": {"1": 2.0}, "generate_tokens_per_second_kv_cache": 50.0,
        "generate_tokens_per_second_no_cache": 25.0, "generated_tokens": 64, "prompt_tokens": 32,
    }, ratios={"transformer_vs_ngram_latency": 1.0, "ngram_vs_transformer_generation": 1.0, "kv_cache_speedup": 2.0,
               "transformer_vs_ngram_load": 1.0})
    header, first, second = render_speed(report).splitlines()[:3]
    assert len(header) == len(first) == len(second)  # numbers flush right under their headings
    ends = [m.end() for m in re.finditer(r"\S+(?=  |$)", header.replace("n-gram order", "n-gram_order"))]
    for line in (first, second):
        assert [m.end() for m in re.finditer(r"\S+(?=  |$)", line.replace(" / ", "_/_"))] == ends
    markdown = render_speed(report, markdown=True).splitlines()
    assert markdown[1] == "|" + "---:|" * 9 and markdown[2].startswith("| 2 | 1.2")


def test_version():
    out = invoke("--version")
    assert out.exit_code == 0 and out.output.strip().endswith(metadata.version("trie-vs-transformer"))


def test_a_model_folder_is_a_valid_ngram(tmp_path):
    """The native model is a folder of arrays: --ngram accepts it (and still refuses other folders)."""
    from bench.cli import check_ngram_path
    from corpora.common import UserError
    from ngram import NgramModel, save_model

    folder = save_model(NgramModel.from_sentences([["a", "b", "a", "b"]] * 3, order=2, min_count=1), tmp_path / "m.ngram")
    check_ngram_path(folder)  # no error
    with pytest.raises(UserError, match="not an n-gram model"):
        check_ngram_path(tmp_path)
