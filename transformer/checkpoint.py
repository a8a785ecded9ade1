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
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from corpora.common import UserError, atomic_write

from .config import GPT2Config

if TYPE_CHECKING:
    from .train import TrainConfig, TrainState

Params = dict[str, np.ndarray]

CHECKPOINT_FILE = "checkpoint.safetensors"
CHECKPOINT_FORMAT = "trie-vs-transformer/train checkpoint v1"
INIT_STD = 0.02  # GPT-2's initializer_range


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
        "train_losses_every_10_steps": [round(x, 4) for x in state.losses[::10]],
        **record,
    }


def load_checkpoint(folder: Path) -> "tuple[TrainState, GPT2Config, TrainConfig, dict]":
    """Read checkpoint.safetensors: (state, model config, training config, record)."""
    from safetensors import safe_open

    from .train import TrainConfig, TrainState  # train.py imports this module first

    path = Path(folder) / CHECKPOINT_FILE
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = json.loads((handle.metadata() or {})["trainer"])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (KeyError, json.JSONDecodeError, OSError, ValueError) as err:
        raise UserError(f"{path} is not a training checkpoint ({err})") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a training checkpoint of this version")
    config = GPT2Config(**meta["model"])
    tc = TrainConfig.from_dict(meta["train"])

    def group(prefix: str) -> Params:
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = meta["rng"]
    state = TrainState(group("param."), group("adam_m."), group("adam_v."), rng, meta["step"],
                       meta["losses"], [list(e) for e in meta["evals"]], meta["seconds"], meta["tokens"])
    return state, config, tc, meta["record"]


