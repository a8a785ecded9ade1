"""`ngram export` (--arpa, --trie-json) and `ngram build --from-arpa`, end to end, and their bad input."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpora.tokenizers import BOS, EOS, UNK
from ngram import load_model
from ngram.arpa import read_arpa
from ngram.cli import main
from ngram.export import VIEW_FORMAT

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
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "one.txt").write_text(TEXT, encoding="utf-8")
    (folder / "two.txt").write_text(TEXT.replace("cat", "fox"), encoding="utf-8")
    path = tmp_path / "m.ngram"
    run("build", str(folder), "-o", str(path), "--order", "3", "--no-progress")
    return path


@pytest.fixture()
def imported(model_dir: Path, tmp_path: Path) -> Path:
    arpa = tmp_path / "m.arpa"
    run("export", str(model_dir), "--arpa", str(arpa), "--no-progress")
    path = tmp_path / "imported.ngram"
    run("build", "--from-arpa", str(arpa), "-o", str(path), "--no-progress")
    return path


def test_export_arpa_writes_every_ngram_and_a_json_summary(model_dir, tmp_path):
    arpa = tmp_path / "out.arpa"
    summary = json.loads(run("export", str(model_dir), "--arpa", str(arpa), "--no-progress", "--json").stdout)
    model = load_model(model_dir)
    order, tables = read_arpa(arpa)
    assert order == 3 and summary["format"] == "arpa" and summary["bytes"] == arpa.stat().st_size
    assert summary["ngrams_per_order"] == {"1": len(model.vocab), "2": len(tables[1]), "3": len(tables[2])}
    assert len(tables[2]) == len(model.trie.levels[2].ids)
    assert not list(tmp_path.glob(".*.part"))


def test_export_needs_exactly_one_output_and_context_only_with_trie_json(model_dir, tmp_path):
    for args, message in [
        ((), "give one output"),
        (("--arpa", "a.arpa", "--trie-json", "t.json"), "give one output"),
        (("--arpa", str(tmp_path / "a.arpa"), "--context", "I want"), "go with --trie-json"),
    ]:
        result = run("export", str(model_dir), *args, ok=False)
        assert result.exit_code == 1 and result.output.startswith("Error:") and message in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_trie_json_of_the_whole_trie_loads_back_as_the_same_model(model_dir, tmp_path):
    out = tmp_path / "trie.json.gz"
    summary = json.loads(run("export", str(model_dir), "--trie-json", str(out), "--json").stdout)
    assert summary["whole_trie"] and summary["nodes"] == sum(load_model(model_dir).stats()["ngrams_per_order"].values()) + 1
    assert load_model(out).trie.to_dict() == load_model(model_dir).trie.to_dict()


def test_trie_json_under_a_context_reads_like_the_trie(model_dir, tmp_path):
    out = tmp_path / "want.json"
    run("export", str(model_dir), "--trie-json", str(out), "--context", "I want", "--depth", "1")
    document = json.loads(out.read_text(encoding="utf-8"))
    node = document["trie"]["I"]["want"]
    model = load_model(model_dir)
    assert document["format"] == VIEW_FORMAT and document["context"] == ["I", "want"] and "vocab" not in document
    assert node[""] == model.root["I"]["want"][""]
    assert list(node)[2:] == [t for t in model.root["I"]["want"] if t not in ("", "\0")]  # most frequent first
    assert list(document["trie"]) == ["", "\0", "I"]  # only the path down to the context
    result = run("export", str(model_dir), "--trie-json", str(out), "--context", "zebra stripes", ok=False)
    assert result.exit_code == 1 and "never occurred" in result.output


def test_trie_json_depth_cuts_the_tree_and_gzip_by_name(model_dir, tmp_path):
    out = tmp_path / "top.json.gz"
    run("export", str(model_dir), "--trie-json", str(out), "--depth", "1")
    trie = json.loads(gzip.decompress(out.read_bytes()))["trie"]
    assert all(set(child) == {"", "\0"} for token, child in trie.items() if token not in ("", "\0"))


def test_from_arpa_model_predicts_scores_shows_and_generates(imported, model_dir, tmp_path):
    original = json.loads(run("predict", str(model_dir), "I want to", "--json").stdout)
    predicted = json.loads(run("predict", str(imported), "I want to", "--json").stdout)
    assert predicted["smoothing"] == "arpa"
    assert [c["token"] for c in predicted["candidates"]] == [c["token"] for c in original["candidates"]]
    assert not {BOS, EOS, UNK} & {c["token"] for c in predicted["candidates"]}
    shown = run("predict", str(imported), "I want to").output
    assert "p(arpa)" in shown and "context listed in the ARPA model" in shown and "ARPA file" in shown
    text = tmp_path / "text.txt"
    text.write_text("I want to see the dog. The fox sat on the log.", encoding="utf-8")
    ours = json.loads(run("perplexity", str(model_dir), str(text), "--smoothing", "kn", "--json").stdout)["results"][0]
    theirs = json.loads(run("perplexity", str(imported), str(text), "--json").stdout)["results"]
    assert len(theirs) == 1 and theirs[0]["setting"]["smoothing"] == "arpa"
    assert theirs[0]["per_token"] == pytest.approx(ours["per_token"], rel=1e-5)
    assert "Note: this model was imported from an ARPA file" in run("show", str(imported), "I want").output
    view = tmp_path / "view.json.gz"
    assert "note" in json.loads(run("export", str(imported), "--trie-json", str(view), "--json").stdout)
    assert "not an n-gram model" in run("stats", str(view), ok=False).output  # counts of 0 never load as a model
    assert json.loads(run("generate", str(imported), "I want", "--seed", "1", "--json").stdout)["tokens"]


def test_from_arpa_model_refuses_count_based_options_in_one_line(imported, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("I want to see the dog.", encoding="utf-8")
    for args, message in [
        (("perplexity", str(imported), str(text), "--smoothing", "mle"), "needs counts"),
        (("perplexity", str(imported)), "no held-out text"),
        (("predict", str(imported), "I want", "--smoothing", "addk"), "needs counts"),
    ]:
        result = run(*args, ok=False)
        assert result.exit_code == 1 and result.output.startswith("Error:") and message in result.output, result.output


def test_export_of_an_imported_model_writes_back_the_same_arpa(imported, tmp_path):
    first = tmp_path / "m.arpa"
    again = tmp_path / "again.arpa"
    run("export", str(imported), "--arpa", str(again), "--no-progress")
    assert read_arpa(again) == read_arpa(first)


def test_from_arpa_bad_input_is_one_line_with_the_line_number(tmp_path, model_dir):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\n\\end\\\n", encoding="utf-8")
    result = run("build", "--from-arpa", str(bad), "-o", str(tmp_path / "x.ngram"), "--no-progress", ok=False)
    assert result.exit_code == 1 and "line 7: malformed 1-gram" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "x.ngram").exists()
    result = run("build", str(tmp_path), "--from-arpa", str(bad), ok=False)
    assert result.exit_code == 1 and "give no SOURCE" in result.output


def test_ctrl_c_during_import_leaves_the_old_model_intact(imported, model_dir, tmp_path, monkeypatch):
    import ngram.backoff as backoff

    def interrupt(*args):
        raise KeyboardInterrupt

    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.setattr(backoff.OrderRows, "add", interrupt)
    result = run("build", "--from-arpa", str(tmp_path / "m.arpa"), "-o", str(model_dir), "--no-progress", ok=False)
    assert result.exit_code == 130 and "nothing was written" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert load_model(model_dir).trie.kind == "counts"
