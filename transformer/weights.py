"""Loading GPT-2's weights: Hugging Face layout, safetensors, memory-mapped, no torch.

Where the weights come from
---------------------------
A model folder holds `config.json` (the shape, see config.py), `model.safetensors`
(the tensors) and the tokenizer files (`vocab.json` + `merges.txt`, or OpenAI's
`encoder.json` + `vocab.bpe`). `resolve_model_dir("gpt2")` finds or downloads such a
folder through `huggingface_hub` (its normal cache, ~/.cache/huggingface/hub), so one
command with internet gets the real GPT-2 small.

The names
---------
Hugging Face names every tensor after the module that owns it. For layer i:

    wte.weight  (vocab, C)       token embedding; also the output layer ("tied")
    wpe.weight  (n_ctx, C)       position embedding
    h.i.ln_1.weight/.bias (C)    layer norm before attention
    h.i.attn.c_attn.weight (C, 3C) and .bias (3C)   query, key, value in one matrix
    h.i.attn.c_proj.weight (C, C)  and .bias (C)    heads back to the residual stream
    h.i.ln_2.weight/.bias (C)    layer norm before the MLP
    h.i.mlp.c_fc.weight   (C, 4C) and .bias (4C)    MLP up-projection
    h.i.mlp.c_proj.weight (4C, C) and .bias (C)     MLP down-projection
    ln_f.weight/.bias (C)        final layer norm

A checkpoint saved from `GPT2LMHeadModel` puts `transformer.` in front of each name
(and may add `lm_head.weight`, the same matrix as `wte.weight`); older files also carry
`h.i.attn.bias` and `h.i.attn.masked_bias`, which are the causal mask stored as a
buffer, not learned weights. We accept all of these and ignore the extras.

The Conv1D question (to transpose or not?)
------------------------------------------
PyTorch's `nn.Linear` stores its weight output-major, shape (out, in), and computes
`x @ W.T`. GPT-2's original TensorFlow code, and Hugging Face's `Conv1D` that copies
it, store the weight input-major, shape (in, out), and compute `x @ W`. So the four
matrices c_attn, c_proj, c_fc and mlp.c_proj are used exactly as stored: **no
transpose**. (nanoGPT, which uses nn.Linear, transposes them when it imports these
files.) We check every shape against the config; a matrix that arrives with its two
dimensions swapped is reported as "stored output-major (nn.Linear layout)" instead of
being silently transposed, because for the square c_proj no shape check could tell.

Memory-mapping
--------------
A safetensors file is an 8-byte little-endian header length, a JSON header (name ->
dtype, shape, byte offsets) and the raw little-endian tensor bytes. `safe_open(...,
framework="numpy")` copies each tensor into fresh memory, which would hold the weights
twice while loading. Instead we read the small header ourselves and hand numpy a
read-only `np.memmap` view of each float32 tensor: nothing is copied, the operating
system pages the weights in as they are used, and several processes share one copy.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from corpora.common import UserError
from corpora.validate import check_finite_array, safetensors_header

from .config import GPT2Config

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE_PAIRS = (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe"))
HUB_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt")

#: The model shipped with this package: a small GPT-2 trained from scratch on the default
#: books' training split (see its MODEL_CARD.md). `--model bundled` names it.
BUNDLED_NAME = "bundled"
BUNDLED_MODEL = Path(__file__).parent / "bundled" / "books-gpt2"

#: `--model auto` (every command's default): GPT-2 small when it can be had, else the
#: bundled model. `GPT2_SMALL` is GPT-2 small's Hugging Face name.
AUTO_NAME = "auto"
GPT2_SMALL = "gpt2"

#: Tensors that may appear in a checkpoint but are not weights we use.
IGNORED = re.compile(r"^(h\.\d+\.attn\.(bias|masked_bias)|lm_head\.weight)$")


class Linear(NamedTuple):
    """An affine map y = x @ w + b, with w stored input-major (in, out)."""

    w: np.ndarray
    b: np.ndarray


class LayerNormParams(NamedTuple):
    """Layer norm's learned scale (gamma, `.weight`) and shift (beta, `.bias`)."""

    g: np.ndarray
    b: np.ndarray


class Block(NamedTuple):
    """One transformer block: attention then MLP, each after its own layer norm."""

    ln_1: LayerNormParams
    c_attn: Linear  # x -> [q | k | v]
    attn_proj: Linear  # concatenated heads -> residual stream
    ln_2: LayerNormParams
    c_fc: Linear  # residual -> 4x wider hidden layer
    mlp_proj: Linear  # hidden layer -> residual stream


class Params(NamedTuple):
    """All of GPT-2's weights."""

    wte: np.ndarray  # (vocab, C) token embedding, reused as the output layer
    wpe: np.ndarray  # (n_ctx, C) position embedding
    blocks: tuple[Block, ...]
    ln_f: LayerNormParams


# ----------------------------------------------------------------------------- shapes


def expected_shapes(config: GPT2Config) -> dict[str, tuple[int, ...]]:
    """Every tensor name we need, with the shape the config implies."""
    c = config.n_embd
    shapes: dict[str, tuple[int, ...]] = {
        "wte.weight": (config.vocab_size, c),
        "wpe.weight": (config.n_ctx, c),
    }
    for i in range(config.n_layer):
        shapes.update({
            f"h.{i}.ln_1.weight": (c,), f"h.{i}.ln_1.bias": (c,),
            f"h.{i}.attn.c_attn.weight": (c, 3 * c), f"h.{i}.attn.c_attn.bias": (3 * c,),
            f"h.{i}.attn.c_proj.weight": (c, c), f"h.{i}.attn.c_proj.bias": (c,),
            f"h.{i}.ln_2.weight": (c,), f"h.{i}.ln_2.bias": (c,),
            f"h.{i}.mlp.c_fc.weight": (c, 4 * c), f"h.{i}.mlp.c_fc.bias": (4 * c,),
            f"h.{i}.mlp.c_proj.weight": (4 * c, c), f"h.{i}.mlp.c_proj.bias": (c,),
        })
    shapes.update({"ln_f.weight": (c,), "ln_f.bias": (c,)})
    return shapes


def canonical_name(name: str) -> str:
    """Drop the `transformer.` prefix that GPT2LMHeadModel checkpoints add."""
    return name[len("transformer."):] if name.startswith("transformer.") else name


# ------------------------------------------------------------------------ safetensors


def read_safetensors_header(path: Path) -> tuple[dict, int]:
    """Return (header dict without __metadata__, byte offset where tensor data starts).

    Every entry is checked first (`corpora.validate.safetensors_header`); the dict maps
    each name to its checked dtype, shape and data_offsets.
    """
    entries, data_start = safetensors_header(path)
    header = {e.name: {"dtype": e.dtype, "shape": list(e.shape), "data_offsets": [e.begin, e.end]} for e in entries}
    return header, data_start


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: shift the 16 bits up and reinterpret."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


RAW_TYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def map_tensors(path: str | Path) -> dict[str, np.ndarray]:
    """Memory-map every tensor of a safetensors file as a read-only numpy array.

    float32 tensors are zero-copy views of the file; float16/bfloat16 ones are
    converted to float32 (a copy). The header is fully checked before any array is
    made (types, byte ranges inside the data, no overlaps; see `safetensors_header`),
    so a damaged file raises a UserError naming the first bad tensor.
    """
    path = Path(path)
    entries, data_start = safetensors_header(path)
    arrays: dict[str, np.ndarray] = {}
    for entry in entries:
        if entry.end == entry.begin:
            arrays[entry.name] = np.zeros(entry.shape, np.float32)
            continue
        raw = np.memmap(path, dtype=RAW_TYPES[entry.dtype], mode="r", offset=data_start + entry.begin,
                        shape=entry.shape)
        if entry.dtype == "F16":
            arrays[entry.name] = raw.astype(np.float32)
        elif entry.dtype == "BF16":
            arrays[entry.name] = _bf16_to_f32(raw)
        else:
            arrays[entry.name] = raw
    return arrays


def check_finite(tensors: dict[str, np.ndarray], source: str) -> None:
    """Refuse NaN or infinite weights at load, naming the tensor (one pass per tensor;
    otherwise they would come out as NaN probabilities printed as results)."""
    for name, array in tensors.items():
        check_finite_array(array, f"tensor {name!r}", source)


# ------------------------------------------------------------------------- assembling


def check_tensors(tensors: dict[str, np.ndarray], config: GPT2Config, source: str) -> dict[str, np.ndarray]:
    """Check names and shapes against the config; return the tensors we use by canonical name."""
    expected = expected_shapes(config)
    found: dict[str, np.ndarray] = {}
    for raw_name, array in tensors.items():
        name = canonical_name(raw_name)
        if IGNORED.match(name):
            continue
        if name in found:
            raise UserError(f"{source}: tensor {name!r} is stored twice (with and without 'transformer.')")
        if name not in expected:
            raise UserError(
                f"{source}: unexpected tensor {raw_name!r} for a config with "
                f"{config.n_layer} layers (does config.json match the weights?)"
            )
        want = expected[name]
        if array.shape != want:
            hint = ""
            if len(want) == 2 and array.shape == want[::-1]:
                hint = " (it looks stored output-major, nn.Linear layout; GPT-2 uses Conv1D, input-major)"
            raise UserError(
                f"{source}: tensor {raw_name!r} has shape {list(array.shape)}, config.json implies "
                f"{list(want)}{hint}"
            )
        found[name] = array
    missing = [name for name in expected if name not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"{source}: missing tensor {missing[0]!r}{more}")
    return found


def assemble_params(tensors: dict[str, np.ndarray], config: GPT2Config) -> Params:
    """Group checked tensors (canonical names) into the nested Params structure."""

    def linear(prefix: str) -> Linear:
        return Linear(tensors[prefix + ".weight"], tensors[prefix + ".bias"])

    def norm(prefix: str) -> LayerNormParams:
        return LayerNormParams(tensors[prefix + ".weight"], tensors[prefix + ".bias"])

    blocks = tuple(
        Block(
            ln_1=norm(f"h.{i}.ln_1"),
            c_attn=linear(f"h.{i}.attn.c_attn"),
            attn_proj=linear(f"h.{i}.attn.c_proj"),
            ln_2=norm(f"h.{i}.ln_2"),
            c_fc=linear(f"h.{i}.mlp.c_fc"),
            mlp_proj=linear(f"h.{i}.mlp.c_proj"),
        )
        for i in range(config.n_layer)
    )
    return Params(wte=tensors["wte.weight"], wpe=tensors["wpe.weight"], blocks=blocks, ln_f=norm("ln_f"))


def load_params(folder: str | Path, config: GPT2Config | None = None) -> tuple[GPT2Config, Params]:
    """Read `config.json` and memory-map `model.safetensors` from a model folder."""
    folder = Path(folder)
    config = config or GPT2Config.from_json(folder / CONFIG_FILE)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise UserError(f"no {WEIGHTS_FILE} in {folder} (only safetensors weights are read; no pickle)")
    config.check_fits_in_memory()
    tensors = check_tensors(map_tensors(weights), config, str(weights))
    check_finite(tensors, str(weights))
    return config, assemble_params(tensors, config)


# ------------------------------------------------------------------ finding the folder


def looks_like_path(name: str) -> bool:
    """True for strings that can only be paths (./x, ~/x, /x, a/b/c, C:\\x), never Hub names."""
    return (
        name.startswith((".", "~", "/"))
        or name.endswith("/")
        or "\\" in name
        or name.count("/") > 1
        or (len(name) > 1 and name[1] == ":")
    )


def offline_help(repo_id: str) -> str:
    """One line telling the user exactly what to download and where to put it."""
    files = ", ".join(HUB_FILES)
    return (
        f"model {repo_id!r} is not a folder and is not in the Hugging Face cache, and the Hub "
        f"cannot be reached: download {files} from https://huggingface.co/{repo_id}/tree/main "
        f"into one folder and pass --model FOLDER (or run once online to fill ~/.cache/huggingface/hub); "
        f"--model bundled works offline"
    )


def download_from_hub(repo_id: str) -> Path:
    """Fetch (or find in the cache) the files we need from a Hugging Face repository."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=list(HUB_FILES)))
    except RepositoryNotFoundError:
        raise UserError(f"--model {repo_id!r}: no such folder, and no such model on the Hugging Face Hub") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, OSError):
        raise UserError(offline_help(repo_id)) from None
    except ValueError as err:  # e.g. an invalid repository id
        raise UserError(f"--model {repo_id!r}: not a folder, nor a valid Hub model name ({err})") from None
    if not (folder / WEIGHTS_FILE).is_file():
        raise UserError(f"Hub model {repo_id!r} has no {WEIGHTS_FILE} (only safetensors weights are read)")
    return folder


def hub_model_cached(repo_id: str = "gpt2") -> bool:
    """Is this Hub model's weights file already in the local Hugging Face cache? (no network)"""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, WEIGHTS_FILE)
    except Exception:  # an invalid repository id, an unreadable cache: not cached
        return False
    return isinstance(found, str) and Path(found).is_file()


def resolve_model_dir(name_or_dir: str | Path, quiet: bool = False) -> Path:
    """A local model folder as given, `bundled` (the model shipped with this package),
    `auto` (see `choose_auto_model`; `quiet` silences its notice), or a Hub name (like
    "gpt2") fetched into the cache."""
    text = str(name_or_dir).strip()
    if not text:
        raise UserError("--model is empty; give a folder, a Hub name such as gpt2, bundled or auto")
    if text == AUTO_NAME:
        return choose_auto_model(quiet)[1]
    if text == BUNDLED_NAME:
        if not (BUNDLED_MODEL / WEIGHTS_FILE).is_file():
            raise UserError(f"the bundled model is missing from {BUNDLED_MODEL} (reinstall the package)")
        return BUNDLED_MODEL
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise UserError(f"--model {text}: not a model folder, it has no {CONFIG_FILE}")
        return path
    if path.exists():
        raise UserError(f"--model {text!r} is a file; give the folder that holds config.json and {WEIGHTS_FILE}")
    if looks_like_path(text):
        raise UserError(f"--model {text!r}: no such folder")
    return download_from_hub(text)


# ----------------------------------------------------------------------- --model auto


def gpt2_available() -> bool:
    """GPT-2 small is in the Hugging Face cache, or the Hub may be reachable (not offline).

    Decided without touching the network, so that offline the choice is instant.
    """
    return hub_model_cached(GPT2_SMALL) or not os.environ.get("HF_HUB_OFFLINE")


def print_notice(message: str) -> None:
    """One `Notice: ...` line on stderr, so stdout stays clean for --json and pipes."""
    print(f"Notice: {message}", file=sys.stderr, flush=True)


def choose_auto_model(quiet: bool = False) -> tuple[str, Path]:
    """What `--model auto` means: (name, folder) of GPT-2 small when it is in the Hugging
    Face cache or downloadable, otherwise of the bundled model, with a one-line notice.

    The one place this choice is made: the `transformer` commands and `bench` both ask here,
    so they always agree on which model "auto" is.
    """
    if gpt2_available():
        try:
            return GPT2_SMALL, resolve_model_dir(GPT2_SMALL)
        except UserError as err:
            reason = str(err).split(":")[0]
            if not quiet:
                print_notice(f"GPT-2 small is not available ({reason}); using the bundled model trained on the default books")
    elif not quiet:
        print_notice("GPT-2 small is not in the Hugging Face cache (offline); using the bundled model trained on the default books")
    return BUNDLED_NAME, resolve_model_dir(BUNDLED_NAME)


def resolve_tokenizer_dir(name_or_dir: str | Path) -> Path:
    """The folder holding the tokenizer of `--model NAME_OR_DIR`, found without loading
    (or needing) any weights: `gpt2` is GPT-2's own tokenizer, shipped with the package;
    `bundled` the bundled model's; `auto` the one `--model auto` would use; a folder needs
    only the two tokenizer files (either layout), no config.json or weights."""
    from corpora.tokenizers.bpe import GPT2_TOKENIZER_DIR

    text = str(name_or_dir).strip()
    if text == AUTO_NAME:
        text = GPT2_SMALL if gpt2_available() else BUNDLED_NAME
    if text == GPT2_SMALL:
        return GPT2_TOKENIZER_DIR
    if text == BUNDLED_NAME:
        return BUNDLED_MODEL
    path = Path(text).expanduser()
    if path.is_dir():
        if not tokenizer_files_present(path):
            raise UserError(
                f"--model {text}: no tokenizer files there (it needs vocab.json + merges.txt, "
                f"or encoder.json + vocab.bpe)"
            )
        return path
    return resolve_model_dir(text)  # a file, a missing folder or a Hub name: the usual errors


def tokenizer_files_present(folder: Path) -> bool:
    """Does the folder hold one of the two tokenizer file pairs?"""
    return any((folder / a).is_file() and (folder / b).is_file() for a, b in TOKENIZER_FILE_PAIRS)
