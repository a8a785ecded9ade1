"""How a model trained here was made: its training record (training.json) as tables.

`transformer train` writes training.json beside the weights: the settings, the held-out
loss at every evaluation, the copying test (a random sequence shown twice), and one
entry per *segment* — each run of the command, the first from scratch and every later
one resumed from the last checkpoint — with when it ran, the steps it trained, how long
it took, on which machine and with which code. A long run on a small machine is trained
in many segments; this module puts them together:

    history = read_history("transformer/bundled/books-gpt2")
    history.hours, history.segments[-1].to_step
    print(history_markdown(history))     # the tables a model card shows

`transformer history --model bundled` prints the same.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from corpora.common import UserError

RECORD_FILE = "training.json"


@dataclass
class Segment:
    """One run of `transformer train` that trained: steps from_step..to_step in `seconds`."""

    number: int
    from_step: int
    to_step: int
    seconds: float
    started: str = ""  # UTC, ISO 8601 ("" if not recorded)
    ended: str = ""
    threads: int | None = None
    code: str = ""  # the commit of the code that ran it
    cpu: str = ""
    note: str = ""

    @property
    def seconds_per_step(self) -> float | None:
        steps = self.to_step - self.from_step
        return self.seconds / steps if steps > 0 else None


@dataclass
class TrainingHistory:
    """A model's training record, read from its training.json (see the module docstring)."""

    shape: str  # "6 layers x 256, 4 heads, 512-token context, 4,096 tokens"
    parameters: int
    steps_done: int
    steps_planned: int
    tokens_per_step: int
    seconds: float
    evals: list[tuple[int, float]] = field(default_factory=list)  # (step, held-out nats per token)
    copy_evals: list[tuple[int, float, float]] = field(default_factory=list)  # (step, first copy, second copy)
    segments: list[Segment] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    @property
    def tokens_seen(self) -> int:
        return self.steps_done * self.tokens_per_step


def read_history(folder: str | Path) -> TrainingHistory:
    """The training record of the model in `folder` (one line of error if it has none or it is damaged)."""
    path = Path(folder) / RECORD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{folder} has no {RECORD_FILE}: the model was not trained with `transformer train`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} cannot be read: {err}") from None
    try:
        return history_of(record)
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path} is not a training record this version reads ({type(err).__name__}: {err})") from None


def history_of(record: dict) -> TrainingHistory:
    """`read_history` for a record already loaded."""
    model, training = record["model"], record["training"]
    shape = (f"{model['n_layer']} layers x {model['n_embd']}, {model['n_head']} heads, "
             f"{model['n_ctx']}-token context, {model['vocab_size']:,} tokens")
    segments = [Segment(number=int(s["number"]), from_step=int(s["from_step"]), to_step=int(s["to_step"]),
                        seconds=float(s["seconds"]), started=str(s.get("started_utc", "")),
                        ended=str(s.get("ended_utc", "")), threads=s.get("threads"), code=str(s.get("code", "")),
                        cpu=str(s.get("machine", {}).get("cpu", "")), note=str(s.get("note", "")))
                for s in record.get("segments", [])]
    return TrainingHistory(
        shape=shape, parameters=int(model.get("parameters", 0)), steps_done=int(record["steps_done"]),
        steps_planned=int(training["steps"]), tokens_per_step=int(training["batch_size"]) * int(training["ctx"]),
        seconds=float(record.get("seconds", 0.0)),
        evals=[(int(step), float(loss)) for step, loss in record.get("evals", [])],
        copy_evals=[(int(step), float(first), float(second)) for step, first, second in record.get("copy_evals", [])],
        segments=segments)


def history_dict(history: TrainingHistory) -> dict:
    """The history as plain data (for --json), with the derived hours and tokens seen."""
    from dataclasses import asdict

    return {**asdict(history), "hours": round(history.hours, 3), "tokens_seen": history.tokens_seen}


def history_markdown(history: TrainingHistory) -> str:
    """The record as Markdown: a summary line, every segment, and every evaluation."""
    runs = (f"in {len(history.segments)} segment{'s' if len(history.segments) != 1 else ''}"
            if history.segments else "in one run (no segments recorded)")
    lines = [f"{history.shape}; {history.parameters:,} parameters. {history.steps_done:,} of "
             f"{history.steps_planned:,} steps ({history.tokens_seen:,} tokens) in {history.hours:.1f} h "
             f"of training, {runs}.", ""]
    if history.segments:
        lines += ["| segment | started (UTC) | steps | time | s / step | threads | code | note |",
                  "|---:|---|---|---:|---:|---:|---|---|"]
        for s in history.segments:
            per_step = f"{s.seconds_per_step:.2f}" if s.seconds_per_step else ""
            lines.append(f"| {s.number} | {s.started[:16].replace('T', ' ')} | {s.from_step:,}–{s.to_step:,} | "
                         f"{s.seconds / 60:,.0f} min | {per_step} | {s.threads or ''} | {s.code} | "
                         f"{s.note.replace('|', '/')} |")
        lines.append("")
    if history.evals:
        copies = {step: (first, second) for step, first, second in history.copy_evals}
        lines += ["| step | tokens seen | held-out loss (nats/token) | copy test: first / second copy |",
                  "|---:|---:|---:|---:|"]
        for step, loss in history.evals:
            copy = copies.get(step)
            shown = f"{copy[0]:.2f} / {copy[1]:.2f}" if copy else ""
            lines.append(f"| {step:,} | {step * history.tokens_per_step:,} | {loss:.4f} | {shown} |")
    return "\n".join(lines)
