"""Training's files: the checkpoint to resume from, and the model exported for use.

Files in the output folder (Hugging Face GPT-2 layout, so `transformer.load_model`
and `transformers.GPT2LMHeadModel.from_pretrained` both read it unchanged):

    config.json             GPT2Config keys (model_type "gpt2", n_layer, n_head, ...)
    model.safetensors       "transformer.wte.weight", "transformer.h.0.attn.c_attn.weight", ...
    vocab.json, merges.txt  the BPE tokenizer (written by train_cli)
    training.json           hyper-parameters, the corpus and its split, losses, time
    checkpoint.safetensors  weights + AdamW moments ("param.<name>", "adam_m.<name>",
                            "adam_v.<name>"); step, RNG state and history in its metadata
                            under "trainer": everything `--resume` needs, in one atomic file

No pickle anywhere: tensors are safetensors, everything else JSON. The tensor names and
metadata keys are a file format: runs resume from checkpoints written by older code, so
they may gain keys but never lose or rename one.
"""
from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from corpora.common import UserError, atomic_write
from corpora.documents import check_corpus_record
from corpora.validate import (MAX_JSON_DEPTH, cap_line, check_finite_array, check_int, is_int, json_depth,
                              safetensors_header, short_repr)

from .config import GPT2Config
from .copying import COPY_LENGTH, COPY_REPEATS

if TYPE_CHECKING:
    from .train import TrainConfig, TrainState

Params = dict[str, np.ndarray]

CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "trie-vs-transformer/train checkpoint v1"
INIT_STD = 0.02  # GPT-2's initializer_range
MAX_SETTING = 2**53  # whole numbers in a checkpoint's metadata (steps, tokens, seeds) stay below this


def hf_config(config: GPT2Config, eot_id: int | None, dropout: float = 0.0) -> dict:
    """config.json in Hugging Face's GPT2Config format (transformers reads it unchanged)."""
    token = eot_id if eot_id is not None else config.vocab_size - 1
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": dropout,
        "bos_token_id": token,
        "embd_pdrop": dropout,
        "eos_token_id": token,
        "initializer_range": INIT_STD,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "model_type": "gpt2",
        "n_ctx": config.n_ctx,
        "n_embd": config.n_embd,
        "n_head": config.n_head,
        "n_inner": None,
        "n_layer": config.n_layer,
        "n_positions": config.n_ctx,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": dropout,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "use_cache": True,
        "vocab_size": config.vocab_size,
    }


def write_json(path: Path, data: dict) -> None:
    """Pretty JSON, written atomically."""
    with atomic_write(path, "w") as handle:
        handle.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def save_tensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """A safetensors file, written atomically (a crash leaves the previous file intact)."""
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata=metadata)
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def export_model(folder: Path, params: Params, config: GPT2Config, eot_id: int | None, dropout: float = 0.0) -> None:
    """Write config.json and model.safetensors with Hugging Face GPT2LMHeadModel names.

    The Conv1D matrices are stored input-major exactly as we use them (no transpose);
    the output layer is tied to wte, so there is no separate lm_head.weight. The
    metadata {"format": "pt"} is what transformers expects of a safetensors checkpoint.
    """
    save_tensors(folder / "model.safetensors", {"transformer." + k: v for k, v in params.items()}, {"format": "pt"})
    write_json(folder / "config.json", hf_config(config, eot_id, dropout))


def save_checkpoint(folder: Path, state: "TrainState", config: GPT2Config, tc: "TrainConfig", record: dict) -> None:
    """Write checkpoint.safetensors (everything to resume), then the exported model and
    training.json. Each file is replaced atomically."""
    tensors = {}
    for name in state.params:
        tensors["param." + name] = state.params[name]
        tensors["adam_m." + name] = state.m[name]
        tensors["adam_v." + name] = state.v[name]
    meta = {
        "format": CHECKPOINT_FORMAT,
        "step": state.step,
        "rng": state.rng.bit_generator.state,
        "losses": state.losses,
        "evals": state.evals,
        "copy_evals": state.copy_evals,
        "seconds": state.seconds,
        "tokens": state.tokens,
        "model": config.to_dict(),
        "train": tc.to_dict(),
        "record": record,
    }
    update_segment(record, state)
    save_tensors(folder / CHECKPOINT_FILE, tensors, {"format": "np", "trainer": json.dumps(meta)})
    export_model(folder, state.params, config, record.get("eot_id"), tc.dropout)
    write_json(folder / "training.json", training_summary(state, config, tc, record))


def start_segment(record: dict, state: "TrainState", threads: int | None, command: str) -> dict:
    """Open a new entry in record["segments"]: one per `transformer train` run that trains.

    A long run is trained in segments (each stopped by Ctrl-C or a session's end and
    continued with --resume); each says when and where it ran, with which code and command,
    and (kept up to date at every checkpoint) the steps it trained and the seconds it took.
    A run resumed from a checkpoint written before segments were recorded gets one first
    entry covering what was trained then.
    """
    from datetime import datetime, timezone

    from corpora.machine import code_version, machine_summary

    segments = record.setdefault("segments", [])
    if not segments and state.step > 0:
        segments.append({"number": 1, "from_step": 0, "to_step": state.step, "seconds": round(state.seconds, 1),
                         "note": "trained before segments were recorded"})
    segment = {
        "number": len(segments) + 1,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ended_utc": None,
        "from_step": state.step,
        "to_step": state.step,
        "seconds": 0.0,
        "seconds_before": round(state.seconds, 1),
        "command": command,
        "code": code_version(),
        "threads": threads,
        "machine": machine_summary(),
    }
    segments.append(segment)
    return segment


def update_segment(record: dict, state: "TrainState") -> None:
    """Bring the open segment up to the checkpoint being saved: its last step, end time and seconds."""
    from datetime import datetime, timezone

    if not record.get("segments"):
        return
    segment = record["segments"][-1]
    if "seconds_before" not in segment:  # the back-filled first entry is closed
        return
    segment["to_step"] = state.step
    segment["ended_utc"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    segment["seconds"] = round(state.seconds - segment["seconds_before"], 1)


def training_summary(state: "TrainState", config: GPT2Config, tc: "TrainConfig", record: dict) -> dict:
    """training.json: how the model was made and how it went."""
    from .train import count_params
    recent = state.losses[-50:]
    return {
        "model": {**config.to_dict(), "parameters": count_params(config)},
        "training": tc.to_dict(),
        "weight_decay_applies_to": "2-D tensors (matmul weights, wte, wpe); not biases or layer norms",
        "optimizer": "AdamW (decoupled weight decay)",
        "schedule": "linear warm-up, cosine decay to lr * min_lr_fraction",
        "steps_done": state.step,
        "tokens_seen": state.tokens,
        "seconds": round(state.seconds, 1),
        "tokens_per_second": round(state.tokens / state.seconds, 1) if state.seconds else None,
        "train_loss_last_50_mean": float(np.mean(recent)) if recent else None,
        "heldout_loss": state.evals[-1][1] if state.evals else None,
        "evals": state.evals,
        "copy_evals": state.copy_evals,
        "copy_evals_are": "[step, loss on the first copy, loss on the second copy] in nats per token: "
                          f"{COPY_REPEATS} random sequences of up to {COPY_LENGTH} tokens shown twice (transformer/copying.py)",
        "train_losses_every_10_steps": [round(x, 4) for x in state.losses[::10]],
        **record,
    }


def load_checkpoint(folder: Path) -> "tuple[TrainState, GPT2Config, TrainConfig, dict]":
    """Read checkpoint.safetensors: (state, model config, training config, record).

    Everything is checked before use, through `corpora.validate`: the safetensors header
    (types, byte ranges), the trainer metadata (bounded JSON; every field of the type and
    range training reads it as), the tensors (the names and shapes the config implies,
    finite values). A damaged checkpoint is one `UserError`, never a traceback.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} does not exist")
    safetensors_header(path)  # the header checked first: types, byte ranges, no overlaps
    try:
        with safe_open(str(path), framework="numpy") as handle:
            raw = (handle.metadata() or {}).get("trainer")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as err:
        raise UserError(cap_line(f"{path} is not a training checkpoint ({err})")) from None
    if not isinstance(raw, str):
        raise UserError(f"{path} is not a training checkpoint (no trainer metadata)")
    meta = trainer_metadata(raw, f"{path} (trainer metadata)")
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a training checkpoint of this version")
    where = f"{path} (damaged)"
    config = checked_model_config(meta.get("model"), where)
    tc = checked_train_config(meta.get("train"), where)
    record = checked_record(meta.get("record"), where)
    params, m, v = (checked_tensors(tensors, prefix, config, where) for prefix in ("param.", "adam_m.", "adam_v."))
    state = checked_state(meta, params, m, v, where)
    return state, config, tc, record


def trainer_metadata(raw: str, where: str) -> object:
    """The trainer metadata's JSON, with bounded nesting and no integer of thousands of digits.

    Unlike `json_with_depth_limit` it accepts NaN and Infinity: `save_checkpoint` writes the
    loss history with Python's json, and a run whose loss blew up keeps them there.
    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise UserError(f"{where}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    except ValueError as err:  # invalid JSON, or an integer too long to convert
        raise UserError(cap_line(f"{where} is not valid JSON: {err}")) from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise UserError(f"{where}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


def checked_model_config(model: object, where: str) -> GPT2Config:
    """The model's shape from the metadata: exactly GPT2Config's fields, checked by GPT2Config itself."""
    names = {f.name for f in fields(GPT2Config)}
    if not isinstance(model, dict) or set(model) != names:
        raise UserError(f"{where}: the model settings are malformed")
    try:
        return GPT2Config(**model)
    except UserError as err:
        raise UserError(f"{where}: {str(err).removeprefix('config: ')}") from None


def checked_train_config(train: object, where: str) -> "TrainConfig":
    """The training settings: each known field of its default's type (whole numbers for the
    integer settings, finite numbers for the others), then TrainConfig's own range checks.
    Fields missing (a checkpoint from older code) take their defaults."""
    from .train import TrainConfig  # train.py imports this module first

    if not isinstance(train, dict):
        raise UserError(f"{where}: the training settings are malformed")
    known = {f.name: f.default for f in fields(TrainConfig)}
    for name, value in train.items():
        if name not in known:
            continue
        if isinstance(known[name], int):
            check_int(name, value, 0, MAX_SETTING, where)
        else:
            check_number(name, value, where)
    try:
        return TrainConfig.from_dict(train)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None


def check_number(name: str, value: object, where: str, lo: float = -math.inf) -> float:
    """`value` if it is a finite number (not a bool) of at least `lo`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < lo:
        raise UserError(f"{where}: {name} must be a finite number, got {short_repr(value)}")
    return float(value)


def checked_record(record: object, where: str) -> dict:
    """The run's record (corpus, split, token counts, command, segments), each entry it
    holds checked for type and range. `transformer train` writes all of them (its --resume
    asks for them: `RUN_RECORD_KEYS`); the library's `train` takes whatever record it is given."""
    if not isinstance(record, dict) or not isinstance(record.get("command", ""), str):
        raise UserError(f"{where}: the run's record is malformed")
    if "corpus" in record:
        try:
            check_corpus_record(record["corpus"])
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
    if "heldout_fraction" in record:
        fraction = check_number("heldout_fraction", record["heldout_fraction"], where, 0.0)
        if fraction >= 1.0:
            raise UserError(f"{where}: heldout_fraction must be below 1, got {fraction}")
    for key in ("train_tokens", "heldout_tokens"):
        if key in record:
            check_int(key, record[key], 0, MAX_SETTING, where)
    if record.get("eot_id") is not None:
        check_int("eot_id", record["eot_id"], 0, MAX_SETTING, where)
    segments = record.get("segments", [])
    if not isinstance(segments, list) or not all(isinstance(s, dict) for s in segments):
        raise UserError(f"{where}: the run's segments are malformed")
    return record


RUN_RECORD_KEYS = ("command", "corpus", "heldout_fraction", "train_tokens", "heldout_tokens")


def check_run_record(record: dict, folder: Path) -> None:
    """--resume: the record must be one `transformer train` wrote (every RUN_RECORD_KEYS entry)."""
    missing = [key for key in RUN_RECORD_KEYS if key not in record]
    if missing:
        raise UserError(f"{folder} holds a checkpoint not written by `transformer train` "
                        f"(its record lacks {', '.join(missing)}); it cannot be resumed from the command line")


def checked_tensors(tensors: dict, prefix: str, config: GPT2Config, where: str) -> Params:
    """The tensors under `prefix`: exactly the names and shapes the config implies, all finite."""
    from .weights import expected_shapes

    group = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    expected = expected_shapes(config)
    if set(group) != set(expected):
        missing = sorted(set(expected) - set(group)) or sorted(set(group) - set(expected))
        raise UserError(f"{where}: the {prefix.rstrip('.')} tensors do not match the model "
                        f"({cap_line(', '.join(missing[:3]), 80)} ...)")
    for name, array in group.items():
        if array.shape != expected[name] or array.dtype != np.float32:
            raise UserError(f"{where}: {prefix}{name} has shape {array.shape}; expected {expected[name]}")
        check_finite_array(array, prefix + name, where)
    return group


def checked_state(meta: dict, params: Params, m: Params, v: Params, where: str) -> "TrainState":
    """The training state: step, RNG, losses, evaluations, seconds and tokens, each checked."""
    from .train import TrainState

    step = check_int("step", meta.get("step"), 0, MAX_SETTING, where)
    tokens = check_int("tokens", meta.get("tokens"), 0, MAX_SETTING, where)
    seconds = check_number("seconds", meta.get("seconds"), where, 0.0)
    losses, evals = meta.get("losses"), meta.get("evals")
    if not isinstance(losses, list):
        raise UserError(f"{where}: the losses are malformed")
    losses = [check_loss("a loss", x, where) for x in losses]
    if not isinstance(evals, list) or not all(isinstance(e, list) and len(e) == 2 for e in evals):
        raise UserError(f"{where}: the evaluations are malformed")
    evals = [[check_int("an evaluation's step", s, 0, MAX_SETTING, where), check_loss("a held-out loss", x, where)]
             for s, x in evals]
    copying = meta.get("copy_evals", [])  # absent in checkpoints written before copying was measured
    if not isinstance(copying, list) or not all(isinstance(e, list) and len(e) == 3 for e in copying):
        raise UserError(f"{where}: the copying evaluations are malformed")
    copying = [[check_int("an evaluation's step", s, 0, MAX_SETTING, where), check_loss("a copy loss", a, where),
                check_loss("a copy loss", b, where)] for s, a, b in copying]
    return TrainState(params, m, v, checked_rng(meta.get("rng"), where), step, losses, evals, seconds, tokens, copying)


def check_loss(name: str, value: object, where: str) -> float:
    """A recorded loss: a number, possibly NaN or infinite (a run that blew up records it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: {name} must be a number, got {short_repr(value)}")
    return float(value)


def checked_rng(state: object, where: str) -> np.random.Generator:
    """The batch-order RNG from its saved PCG64 state (NumPy checks the numbers; we check the shape)."""
    inner = state.get("state") if isinstance(state, dict) else None
    if (not isinstance(state, dict) or state.get("bit_generator") != "PCG64" or not isinstance(inner, dict)
            or not all(is_int(inner.get(k)) for k in ("state", "inc"))):
        raise UserError(f"{where}: the random generator's state is malformed")
    rng = np.random.Generator(np.random.PCG64())
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError):
        raise UserError(f"{where}: the random generator's state is malformed") from None
    return rng
