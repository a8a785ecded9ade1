"""The `ngram` command line, end to end, and every bad input it must survive."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpora import load_corpus
from corpora.cli_common import elide
from ngram import NgramModel, load_model, save_model
from ngram.cli import main
from ngram.io import default_model_path

TEXT = (
    "I want to be a doctor. I want to know the truth. You want to be free.\n\n"
    "The cat sat on the mat. The dog sat on the log. The cat saw the dog.\n"
) * 30


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "one.txt").write_text(TEXT, encoding="utf-8")
    (folder / "two.txt").write_text(TEXT.replace("cat", "fox"), encoding="utf-8")
    return folder


@pytest.fixture()
def model_file(corpus_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "m.json.gz"
    run("build", str(corpus_dir), "-o", str(path), "--order", "4", "--no-progress")
    return path


def test_build_writes_the_default_model_that_other_commands_find(corpus_dir):
    result = run("build", str(corpus_dir), "--no-progress", "--json")
    summary = json.loads(result.stdout)  # warnings (Kneser-Ney discounts) go to stderr
    assert summary["order"] == 5 and summary["documents"] == 2
    assert Path(summary["model"]) == default_model_path() and default_model_path().exists()
    predicted = json.loads(run("predict", "I want to", "--json").output)
    assert [c["token"] for c in predicted["candidates"][:2]] == ["be", "know"]
    assert predicted["matched_order"] == 5
    expected = load_corpus(corpus_dir).train_text().count("I want to be")  # held-out tail excluded
    assert predicted["candidates"][0]["count"] == expected < TEXT.count("I want to be") * 2
    assert "I want to be" in predicted["example"]


def test_predict_table_and_json(model_file):
    out = run("predict", str(model_file), "The cat sat on", "-k", "2").output
    rows = [line.split() for line in out.splitlines() if line[:3].strip().isdigit()]
    assert [row[:2] for row in rows] == [["1", "the"], ["2", "."]]  # </s> is not offered as a word
    assert "Not listed: end of sentence (</s>) 0.0" in out
    assert "Matched: cat sat on  (4-gram" in out and "Why: “The cat sat on the mat.”" in out
    data = json.loads(run("predict", str(model_file), "The cat sat on", "--json").output)
    assert data["candidates"][0]["token"] == "the"
    assert data["candidates"][0]["count"] == data["context_count"]  # "cat sat on" is always followed by "the"
    assert data["candidates"][0]["probability"] > 0.5


def test_complete_generate_stats_and_perplexity(model_file, tmp_path):
    phrases = json.loads(run("complete", str(model_file), "The cat", "-n", "2", "--json").output)
    assert phrases[0]["probability"] >= phrases[-1]["probability"]
    assert [p["tokens"] for p in phrases[:2]] == [["sat", "on"], ["saw", "the"]]
    a = json.loads(run("generate", str(model_file), "The dog", "--seed", "5", "--json").output)
    b = json.loads(run("generate", str(model_file), "The dog", "--seed", "5", "--json").output)
    assert a["tokens"] == b["tokens"] and len(a["tokens"]) == 40
    greedy = run("generate", str(model_file), "I want to", "--greedy", "-n", "1").output
    assert greedy.strip() == "I want to be"
    stats = json.loads(run("stats", str(model_file), "--json").output)
    assert stats["order"] == 4 and stats["bytes_per_node"] > 0 and stats["file_bytes"] == model_file.stat().st_size
    text = tmp_path / "eval.txt"
    text.write_text("The fox sat on the log. I want to be free.\n", encoding="utf-8")
    ppl = json.loads(run("perplexity", str(model_file), str(text), "--json", "--no-progress").output)
    by_name = {r["setting"]["smoothing"]: r for r in ppl["results"]}
    assert by_name["kn"]["per_token"] < by_name["addk"]["per_token"]
    assert by_name["kn"]["tokens"] == 15 and by_name["kn"]["units"]["words"] == 11
    assert by_name["addk"]["setting"] == {"smoothing": "addk", "order": 4, "sentences": 2, "k": 1.0}
    heldout = run("perplexity", str(model_file), "--no-progress").output
    assert "held-out" in heldout and "Kneser-Ney" in heldout


# ------------------------------------------------------------------ bad inputs
def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line and not line.startswith("Warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_and_empty_corpus_folders(tmp_path):
    one_line_error(run("build", str(tmp_path / "nope"), "-o", str(tmp_path / "m.gz"), ok=False), "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(run("build", str(empty), "-o", str(tmp_path / "m.gz"), ok=False), "no .txt files")
    (empty / "blank.txt").write_text("  \n\n", encoding="utf-8")
    (empty / "binary.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" * 100)
    one_line_error(run("build", str(empty), "-o", str(tmp_path / "m.gz"), ok=False), "no readable text")
    assert not (tmp_path / "m.gz").exists()


def test_binary_files_are_skipped_and_cp1252_is_decoded_with_warning(tmp_path, corpus_dir):
    (corpus_dir / "binary.txt").write_bytes(b"\x89PNG\x00\x00\x00" * 50)
    (corpus_dir / "latin.txt").write_bytes("Caf\u00e9 cr\u00e8me is nice. Caf\u00e9 again.\n".encode("cp1252"))
    with pytest.warns(UserWarning) as caught:
        model = NgramModel.build(corpus_dir, order=3, min_count=1, progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "binary.txt" in messages and "latin.txt" in messages and "Windows-1252" in messages
    assert "Café" in model.vocab
    assert len(model.corpus["documents"]) == 3


def test_order_below_one_and_empty_or_unknown_context(model_file, corpus_dir, tmp_path):
    one_line_error(run("build", str(corpus_dir), "-o", str(tmp_path / "x.gz"), "--order", "0", ok=False), "order")
    one_line_error(run("predict", str(model_file), "", ok=False), "empty")
    one_line_error(run("predict", str(model_file), "   ", ok=False), "empty")
    out = run("predict", str(model_file), "Zzyzx qwxv").output
    assert "fall back to unigrams" in out


def test_corrupted_truncated_and_foreign_model_files(model_file, tmp_path):
    data = model_file.read_bytes()
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(data[: len(data) // 2])
    one_line_error(run("stats", str(truncated), ok=False), "truncated or corrupted")
    garbage = tmp_path / "garbage.json.gz"
    garbage.write_bytes(gzip.compress(b"{not json"))
    one_line_error(run("stats", str(garbage), ok=False), "not valid JSON")
    plain = tmp_path / "plain.json"
    plain.write_text("{}", encoding="utf-8")
    one_line_error(run("stats", str(plain), ok=False), "not an n-gram model file")
    other = tmp_path / "other.json.gz"
    other.write_bytes(gzip.compress(json.dumps({"format": "kenlm-arpa", "version": 1}).encode()))
    one_line_error(run("stats", str(other), ok=False), "not an n-gram model of this toolkit")
    newer = tmp_path / "newer.json.gz"
    document = json.loads(gzip.decompress(data))
    document["version"] = 99
    newer.write_bytes(gzip.compress(json.dumps(document).encode()))
    one_line_error(run("stats", str(newer), ok=False), "version 99")
    one_line_error(run("predict", str(tmp_path / "absent.json.gz"), "hello", ok=False), "no model at")


def test_missing_default_model_says_how_to_build_one():
    one_line_error(run("predict", "hello", ok=False), "ngram build corpora/")


def test_bad_text_files_for_perplexity(model_file, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    one_line_error(run("perplexity", str(model_file), str(empty), ok=False), "empty")
    binary = tmp_path / "bin.dat"
    binary.write_bytes(b"\x00\xff" * 100)
    one_line_error(run("perplexity", str(model_file), str(binary), ok=False), "binary")
    one_line_error(run("perplexity", str(model_file), str(tmp_path / "none.txt"), ok=False), "not found")


def test_ctrl_c_during_build_leaves_no_model_file(corpus_dir, tmp_path, monkeypatch):
    target = tmp_path / "m.json.gz"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ngram.counting.count_levels", interrupted)
    result = run("build", str(corpus_dir), "-o", str(target), "--no-progress", ok=False)
    assert result.exit_code == 130 and "Interrupted" in result.output
    assert list(tmp_path.glob("m.json.gz*")) == [] and list(tmp_path.glob(".m.json.gz*")) == []


def test_crash_while_saving_keeps_the_old_model(model_file, monkeypatch):
    before = model_file.read_bytes()
    model = load_model(model_file)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ngram.io.gzip.compress", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model(model, model_file)
    assert model_file.read_bytes() == before
    assert [p.name for p in model_file.parent.iterdir() if p.name.startswith(".m.json.gz")] == []


def test_every_command_has_help_with_an_example():
    for command in ("build", "predict", "show", "complete", "generate", "perplexity", "stats"):
        out = run(command, "--help").output
        assert "Example:" in out and f"ngram {command}" in out


def test_build_the_default_books_end_to_end(shared_dir, tmp_path, monkeypatch):
    """`ngram build corpora/` on a fresh folder: fetch the 27 manifest books from the
    mirror, build the default 5-gram model, and use it (the quick start, ~30 s)."""
    folder = tmp_path / "corpora"
    folder.mkdir()
    (folder / "manifest.tsv").write_bytes((Path(__file__).parents[1] / "corpora" / "manifest.tsv").read_bytes())
    monkeypatch.setenv("CORPORA_MIRROR", str(shared_dir / "corpora" / "books"))
    run("build", str(folder), "--no-progress")
    assert len(list((folder / "books").glob("*.txt"))) == 27
    stats = json.loads(run("stats", "--json", "--no-memory").output)
    assert stats["order"] == 5 and stats["documents"] == 27 and stats["nodes"] > 5_000_000
    assert stats["training_tokens"] > 2_900_000
    predicted = json.loads(run("predict", "Sherlock", "--json", "--no-example").output)
    assert predicted["candidates"][0]["token"] == "Holmes"


# ------------------------------------------------------------------ hygiene
def test_importing_ngram_imports_no_cli_progress_or_network_code():
    code = "import sys, ngram; print([m for m in ('click', 'tqdm', 'urllib.request') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


@pytest.fixture()
def no_model_loads(monkeypatch):
    """Make loading any model (or building one) a test failure: arguments must be refused first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr("ngram.cli.load_model", refuse)
    monkeypatch.setattr("ngram.cli.NgramModel.build", refuse)


def test_bad_arguments_are_refused_before_any_model_loads(model_file, corpus_dir, tmp_path, no_model_loads):
    one_line_error(run("predict", "", ok=False), "CONTEXT is empty")
    one_line_error(run("predict", str(model_file), "  ", ok=False), "CONTEXT is empty")
    one_line_error(run("complete", str(model_file), "", ok=False), "CONTEXT is empty")
    one_line_error(run("generate", "", ok=False), "PROMPT is empty")
    one_line_error(run("perplexity", str(tmp_path / "missing.txt"), ok=False), "not found", "missing.txt")
    one_line_error(run("perplexity", str(model_file), str(tmp_path / "missing.txt"), ok=False), "missing.txt")
    one_line_error(run("perplexity", "--order", "0", ok=False), "--order")
    out = str(tmp_path / "x.json.gz")
    one_line_error(run("build", str(corpus_dir), "-o", out, "--order", "0", ok=False), "--order")
    one_line_error(run("build", str(corpus_dir), "-o", out, "--min-count", "0", ok=False), "--min-count")
    one_line_error(run("build", str(corpus_dir), "-o", out, "--heldout-fraction", "1.5", ok=False), "--heldout-fraction")


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("phase, name", [
    ("ngram.build.tokenize_corpus", "m.ngram"),
    ("ngram.counting.count_levels", "m.ngram"),
    ("ngram.arrays.np.save", "m.ngram"),  # saving the arrays
    ("ngram.io.gzip.compress", "m.json.gz"),  # saving as JSON
])
def test_ctrl_c_in_any_build_phase_prints_one_line_and_leaves_no_file(phase, name, corpus_dir, tmp_path, monkeypatch):
    target = tmp_path / name
    monkeypatch.setattr(phase, interrupt)
    result = run("build", str(corpus_dir), "-o", str(target), "--no-progress", ok=False)
    assert result.exit_code == 130
    lines = [line for line in result.output.splitlines() if line and not line.startswith("Warning:")]
    assert lines == ["Interrupted; nothing was written."]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["books"]


def test_long_prompts_are_shown_with_their_middle_cut_out(model_file):
    prompt = "The cat sat on the mat. " * 20 + "The dog sat on"
    out = run("complete", str(model_file), prompt, "-n", "1", "-k", "1").output
    line = out.splitlines()[0]
    assert " … " in line and line.rstrip().endswith("… the") and len(line) < 160, line
    assert elide(prompt) in line
    sentence = "The cat sat on the mat and " * 20 + "the dog sat on"  # one long sentence: all of it is context
    context = run("predict", str(model_file), sentence, "-k", "1", "--no-example").output.splitlines()[0]
    assert context.startswith("Context: <s> The cat sat") and context.endswith("the dog sat on"), context
    assert " … " in context and len(context) <= len("Context: ") + 120, context


def test_counts_of_one_are_singular(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "only.txt").write_text(TEXT, encoding="utf-8")
    path = tmp_path / "m.json.gz"
    out = run("build", str(folder), "-o", str(path), "--order", "3", "--no-progress").stdout
    assert "from 1 document," in out and "documents" not in out
    assert "Built from 1 document in" in run("stats", str(path), "--no-memory").output
    text = tmp_path / "one.txt"
    text.write_text("Free.\n", encoding="utf-8")
    out = run("perplexity", str(path), str(text), "--smoothing", "kn", "--no-progress").output
    assert "3 tokens in 1 sentence, 1 word, 6 bytes" in out


def test_version():
    from importlib.metadata import version

    assert run("--version").output.split()[-1] == version("trie-vs-transformer")
