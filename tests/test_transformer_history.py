"""`transformer history`: a model's training record (training.json) as tables."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from corpora import UserError
from transformer.cli import main
from transformer.history import history_markdown, history_of, read_history
from transformer.weights import BUNDLED_MODEL

BUNDLED_RECORD = json.loads((BUNDLED_MODEL / "training.json").read_text(encoding="utf-8"))


def segmented_record() -> dict:
    """The bundled model's record as if trained in two segments (the second one resumed)."""
    record = json.loads(json.dumps(BUNDLED_RECORD))
    half = record["steps_done"] // 2
    record["segments"] = [
        {"number": 1, "from_step": 0, "to_step": half, "seconds": 600.0, "started_utc": "2026-12-01T10:00:00+00:00",
         "threads": 2, "code": "abc1234", "machine": {"cpu": "Some CPU"}},
        {"number": 2, "from_step": half, "to_step": record["steps_done"], "seconds": 300.0,
         "started_utc": "2026-12-01T12:00:00+00:00", "threads": 1, "code": "def5678", "note": "resumed | quiet"},
    ]
    record["copy_evals"] = [[record["evals"][-1][0], 12.5, 2.75]]
    return record


def test_the_bundled_models_history_is_its_record():
    history = read_history(BUNDLED_MODEL)
    assert history.steps_done == BUNDLED_RECORD["steps_done"]
    assert history.steps_planned == BUNDLED_RECORD["training"]["steps"]
    assert history.tokens_seen == BUNDLED_RECORD["tokens_seen"]
    assert [loss for _, loss in history.evals] == [loss for _, loss in BUNDLED_RECORD["evals"]]
    assert history.parameters == BUNDLED_RECORD["model"]["parameters"]


def test_segments_and_evaluations_become_markdown_tables():
    record = segmented_record()
    history = history_of(record)
    half = record["steps_done"] // 2
    assert [s.number for s in history.segments] == [1, 2]
    assert history.segments[0].seconds_per_step == pytest.approx(600.0 / half)
    text = history_markdown(history)
    assert "in 2 segments." in text
    assert f"| 1 | 2026-12-01 10:00 | 0–{half:,} | 10 min |" in text
    assert "| def5678 | resumed / quiet |" in text  # a | in a note cannot break the table
    last_step, last_loss = record["evals"][-1]
    per_step = record["training"]["batch_size"] * record["training"]["ctx"]
    assert f"| {last_step:,} | {last_step * per_step:,} | {last_loss:.4f} | 12.50 / 2.75 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2 + 1 + len(record["evals"])  # two headers, two segments, every evaluation


def test_the_command_prints_the_tables_and_json(tmp_path: Path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text((BUNDLED_MODEL / "config.json").read_text())
    (folder / "training.json").write_text(json.dumps(segmented_record()))
    shown = CliRunner().invoke(main, ["history", "--model", str(folder)])
    assert shown.exit_code == 0, shown.output
    assert "in 2 segments." in shown.output and "| segment |" in shown.output
    data = json.loads(CliRunner().invoke(main, ["history", "-m", str(folder), "--json"]).output)
    assert data["steps_done"] == BUNDLED_RECORD["steps_done"] and [s["code"] for s in data["segments"]] == [
        "abc1234", "def5678"]
    assert data["hours"] == pytest.approx(BUNDLED_RECORD["seconds"] / 3600, abs=1e-3)


@pytest.mark.parametrize("content, message", [
    (None, "has no training.json"),
    ("{not json", "cannot be read"),
    ('{"model": 3}', "not a training record this version reads"),
])
def test_a_missing_or_damaged_record_is_one_line(tmp_path: Path, content, message):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text((BUNDLED_MODEL / "config.json").read_text())
    if content is not None:
        (folder / "training.json").write_text(content)
    with pytest.raises(UserError, match=message):
        read_history(folder)
    result = CliRunner().invoke(main, ["history", "--model", str(folder)])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
