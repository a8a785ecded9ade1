"""Loading weights: names, shapes, truncation, config mismatches, offline hub errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from corpora.common import UserError
from transformer.config import GPT2Config
from transformer.model import GPT2, load_model
from transformer.weights import map_tensors, resolve_model_dir

TINY = Path(__file__).parent / "fixtures" / "gpt2-tiny"


@pytest.fixture()
def tiny_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(TINY, folder)
    return folder


def rewrite(folder: Path, change) -> None:
    """Load the fixture's tensors, let `change` edit the dict, save it back."""
    tensors = {name: np.array(array) for name, array in map_tensors(folder / "model.safetensors").items()}
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"))


def test_weights_are_memory_mapped_float32_views():
    model = GPT2.from_dir(TINY)
    assert isinstance(model.params.wte, np.memmap) and model.params.wte.dtype == np.float32
    assert model.params.blocks[0].c_attn.w.shape == (64, 192)  # input-major Conv1D: no transpose
    assert not model.params.wte.flags.writeable


def test_config_reads_hf_names():
    config = GPT2Config.from_json(TINY / "config.json")
    assert (config.n_layer, config.n_head, config.n_embd, config.n_ctx, config.vocab_size) == (2, 4, 64, 32, 101)
    assert config.head_dim == 16
    assert GPT2Config.from_dict({"n_ctx": 7}).n_ctx == 7
    with pytest.raises(UserError, match="not divisible"):
        GPT2Config(n_embd=10, n_head=3)


def test_names_without_prefix_and_hf_buffers_are_accepted(tiny_copy):
    def strip_prefix_add_buffers(t):
        for name in list(t):
            t[name.removeprefix("transformer.")] = t.pop(name)
        t["h.0.attn.bias"] = np.tril(np.ones((1, 1, 32, 32), np.float32))
        t["h.0.attn.masked_bias"] = np.array(-1e4, np.float32)
        t["lm_head.weight"] = t["wte.weight"].copy()

    rewrite(tiny_copy, strip_prefix_add_buffers)
    a, _ = GPT2.from_dir(TINY).forward(np.array([1, 2, 3]))
    b, _ = GPT2.from_dir(tiny_copy).forward(np.array([1, 2, 3]))
    np.testing.assert_array_equal(a, b)


def test_half_precision_weights_are_widened(tiny_copy):
    rewrite(tiny_copy, lambda t: t.update({k: v.astype(np.float16) for k, v in t.items()}))
    model = GPT2.from_dir(tiny_copy)
    assert model.params.wte.dtype == np.float32
    ref = GPT2.from_dir(TINY)
    np.testing.assert_allclose(model.params.wte, ref.params.wte, atol=1e-3)


def test_missing_tensor_is_named(tiny_copy):
    rewrite(tiny_copy, lambda t: t.pop("transformer.h.1.mlp.c_fc.bias"))
    with pytest.raises(UserError, match=r"missing tensor 'h\.1\.mlp\.c_fc\.bias'"):
        GPT2.from_dir(tiny_copy)


def test_wrong_shape_is_named(tiny_copy):
    rewrite(tiny_copy, lambda t: t.update({"transformer.ln_f.weight": np.ones(63, np.float32)}))
    with pytest.raises(UserError, match=r"'transformer\.ln_f\.weight' has shape \[63\].*\[64\]"):
        GPT2.from_dir(tiny_copy)


def test_transposed_linear_layout_gets_a_hint(tiny_copy):
    key = "transformer.h.0.mlp.c_fc.weight"
    rewrite(tiny_copy, lambda t: t.update({key: np.ascontiguousarray(t[key].T)}))
    with pytest.raises(UserError, match="nn.Linear layout"):
        GPT2.from_dir(tiny_copy)


def test_truncated_file_names_the_tensor(tiny_copy):
    path = tiny_copy / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(UserError, match=r"truncated: tensor '[^']+' needs bytes"):
        GPT2.from_dir(tiny_copy)
    path.write_bytes(b"\x05")
    with pytest.raises(UserError, match="not a safetensors file"):
        GPT2.from_dir(tiny_copy)


def test_config_weights_mismatch(tiny_copy):
    config = json.loads((tiny_copy / "config.json").read_text())
    config["n_layer"] = 1
    (tiny_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"unexpected tensor 'transformer\.h\.1\..*config\.json match"):
        GPT2.from_dir(tiny_copy)
    config["n_layer"], config["vocab_size"] = 2, 50257
    (tiny_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"wte\.weight' has shape \[101, 64\], config.json implies \[50257, 64\]"):
        GPT2.from_dir(tiny_copy)


def test_missing_files(tmp_path, tiny_copy):
    (tiny_copy / "model.safetensors").unlink()
    with pytest.raises(UserError, match="no model.safetensors"):
        GPT2.from_dir(tiny_copy)
    with pytest.raises(UserError, match="no config.json"):
        resolve_model_dir(tmp_path)
    with pytest.raises(UserError, match="no such folder"):
        resolve_model_dir(str(tmp_path / "absent") + "/")
    with pytest.raises(UserError, match="no tokenizer files"):
        load_model(str(TINY))


def test_offline_hub_name_says_what_to_download():
    # conftest sets HF_HUB_OFFLINE=1 and an empty cache
    with pytest.raises(UserError) as err:
        resolve_model_dir("gpt2")
    message = str(err.value)
    assert "\n" not in message
    assert "model.safetensors" in message and "https://huggingface.co/gpt2" in message and "--model FOLDER" in message


def test_hub_name_is_found_in_the_hugging_face_cache(tmp_path, monkeypatch):
    """A name like "gpt2" goes through huggingface_hub; offline, a filled cache is enough."""
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-gpt2"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(TINY, repo / "snapshots" / commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = resolve_model_dir("someone/tiny-gpt2")
    assert folder == (repo / "snapshots" / commit).resolve() or folder == repo / "snapshots" / commit
    assert GPT2.from_dir(folder).config.n_layer == 2
