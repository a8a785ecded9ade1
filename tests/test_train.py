"""Training in NumPy: gradients (finite differences and torch), optimizer, loop, checkpoints."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from corpora.common import UserError
from transformer.backward import gelu_backward, model_forward, model_forward_backward, model_loss
from transformer.config import GPT2Config
from transformer.model import Tape, attention, gelu, gpt2_forward, load_model, merge_heads, split_heads
from corpora.runtime import set_blas_threads
from transformer.train import (
    CHECKPOINT_FILE,
    Interrupted,
    TokenData,
    TrainConfig,
    adamw_update,
    clip_grad_norm,
    decays,
    evaluate,
    evaluate_copying,
    heldout_batches,
    init_params,
    learning_rate,
    load_checkpoint,
    new_state,
    sample_batch,
    train,
)
from transformer.weights import assemble_params, expected_shapes

FIXTURE = Path(__file__).parent / "fixtures" / "train-tiny"
TINY = GPT2Config(n_layer=2, n_head=2, n_embd=8, n_ctx=6, vocab_size=11)


def random_params(config: GPT2Config, seed: int, dtype=np.float64) -> dict[str, np.ndarray]:
    """GPT-2 init plus noise everywhere, so layer norms and biases are not trivially 1 and 0."""
    params = init_params(config, seed, dtype)
    rng = np.random.default_rng(seed + 100)
    return {k: (v + 0.3 * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}


def numerical_gradient(loss_of, array: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences, one element at a time (float64)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        old = array[index]
        array[index] = old + h
        plus = loss_of()
        array[index] = old - h
        minus = loss_of()
        array[index] = old
        grad[index] = (plus - minus) / (2 * h)
    return grad


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_every_gradient_matches_finite_differences(dropout):
    params = random_params(TINY, seed=1)
    rng = np.random.default_rng(2)
    ids = rng.integers(0, TINY.vocab_size, (2, 5))
    targets = rng.integers(0, TINY.vocab_size, (2, 5))

    def loss_of() -> float:  # the same dropout masks every time: a fresh generator with one seed
        return model_forward_backward(params, TINY, ids, targets, dropout, np.random.default_rng(9))[0]

    _, grads = model_forward_backward(params, TINY, ids, targets, dropout, np.random.default_rng(9))
    assert grads.keys() == params.keys() == expected_shapes(TINY).keys()
    for name, array in params.items():
        numeric = numerical_gradient(loss_of, array)
        assert grads[name].shape == array.shape and grads[name].dtype == np.float64
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)
    assert np.abs(grads["wpe.weight"][5:]).max() == 0.0  # position 5 is never used with T = 5
    assert np.abs(grads["wpe.weight"][:5]).max() > 0.0


def test_gelu_backward_matches_finite_differences():
    x = np.linspace(-4, 4, 41)
    tape = Tape()
    gelu(x.copy(), tape)
    slope = gelu_backward(np.ones_like(x), tape.saved)
    numeric = (gelu(x + 1e-6) - gelu(x - 1e-6)) / 2e-6
    np.testing.assert_allclose(slope, numeric, rtol=1e-6, atol=1e-9)
    assert abs(slope[20] - 0.5) < 1e-12  # gelu'(0) = 1/2


def test_attention_is_causal():
    rng = np.random.default_rng(0)
    qkv = rng.standard_normal((1, 5, 3 * 8))

    def attention_forward(qkv: np.ndarray, n_head: int, tape: Tape | None = None) -> np.ndarray:
        return merge_heads(attention(*(split_heads(part, n_head) for part in np.split(qkv, 3, axis=-1)), tape=tape))

    tape = Tape()
    out = attention_forward(qkv, 2, tape)
    weights = tape.saved["weights"]
    assert np.all(np.triu(weights[0, 0], k=1) == 0)
    np.testing.assert_allclose(weights.sum(-1), 1.0)
    changed = qkv.copy()
    changed[0, 4] += 1.0  # the last position must not change any earlier output
    out2 = attention_forward(changed, 2)
    np.testing.assert_allclose(out2[0, :4], out[0, :4])
    assert not np.allclose(out2[0, 4], out[0, 4])


@pytest.fixture(scope="module")
def torch_ref() -> tuple[dict, dict]:
    with np.load(FIXTURE / "reference.npz", allow_pickle=False) as data:
        arrays = dict(data)
    return arrays, json.loads((FIXTURE / "reference.json").read_text(encoding="utf-8"))


def fixture_params(arrays: dict, prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v.copy() for k, v in arrays.items() if k.startswith(prefix)}


def fixture_config(meta: dict) -> GPT2Config:
    s = meta["shape"]
    return GPT2Config(n_layer=s["n_layer"], n_head=s["n_head"], n_embd=s["n_embd"], n_ctx=s["n_positions"],
                      vocab_size=s["vocab_size"])


def test_loss_and_gradients_match_torch_autograd(torch_ref):
    arrays, meta = torch_ref
    config = fixture_config(meta)
    params = fixture_params(arrays, "param.")
    assert params.keys() == expected_shapes(config).keys()
    loss, grads = model_forward_backward(params, config, arrays["ids"], arrays["targets"])
    assert abs(loss - float(arrays["loss"])) < 1e-5
    for name in params:
        ref = arrays["grad." + name]
        np.testing.assert_allclose(grads[name], ref, rtol=1e-4, atol=1e-6 * np.abs(ref).max(), err_msg=name)


def test_clipped_adamw_steps_match_torch(torch_ref):
    arrays, meta = torch_ref
    config = fixture_config(meta)
    params = fixture_params(arrays, "param.")
    tc = TrainConfig(weight_decay=meta["weight_decay"], beta1=meta["betas"][0], beta2=meta["betas"][1],
                     adam_eps=meta["eps"], grad_clip=meta["clip"])
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for step, lr in enumerate(arrays["lrs"]):
        _, grads = model_forward_backward(params, config, arrays["steps_ids"][step], arrays["steps_targets"][step])
        norm = clip_grad_norm(grads, tc.grad_clip)
        assert norm > tc.grad_clip  # the fixture makes clipping happen
        adamw_update(params, grads, m, v, step + 1, float(lr), tc)
    c = config.n_embd
    for name in params:
        ours, ref = params[name], arrays["after." + name]
        if name.endswith("c_attn.bias"):
            # The key bias adds the same q.b_k to every score in a row, which softmax
            # ignores: its true gradient is 0, and both libraries hold rounding noise
            # (~1e-9) there, which Adam's m / sqrt(v) scales up to steps of size ~lr.
            # So those entries can only agree to within the learning rates.
            assert np.abs(ours[c:2 * c] - ref[c:2 * c]).max() <= 2 * arrays["lrs"].sum()
            ours, ref = np.delete(ours, np.s_[c:2 * c]), np.delete(ref, np.s_[c:2 * c])
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5, err_msg=name)


def test_training_forward_matches_the_inference_engine():
    params = random_params(TINY, seed=3, dtype=np.float32)
    ids = np.random.default_rng(4).integers(0, TINY.vocab_size, (3, 6))
    logits, _ = model_forward(params, TINY, ids)
    inference = assemble_params(params, TINY)
    for row in range(3):
        expected, _ = gpt2_forward(ids[row], inference, TINY, all_positions=True)
        np.testing.assert_allclose(logits[row], expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ optimizer pieces


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    tc = TrainConfig(steps=110, warmup=10, lr=1.0)
    lrs = [learning_rate(s, tc) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.55)  # half-way down the cosine
    assert learning_rate(110, tc) == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_weight_decay_applies_to_2d_tensors_only():
    params = init_params(TINY)
    decayed = {name for name, p in params.items() if decays(name, p)}
    assert "wte.weight" in decayed and "h.0.attn.c_attn.weight" in decayed and "h.1.mlp.c_proj.weight" in decayed
    assert not any(name.endswith(".bias") or ".ln_" in name or name.startswith("ln_f") for name in decayed)
    # with zero gradients (after the first step's moments) only decay moves a weight
    tc = TrainConfig(weight_decay=0.5)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    before = {k: v.copy() for k, v in params.items()}
    adamw_update(params, grads, {k: np.zeros_like(v) for k, v in params.items()},
                 {k: np.zeros_like(v) for k, v in params.items()}, 1, 0.1, tc)
    np.testing.assert_allclose(params["wte.weight"], before["wte.weight"] * 0.95, rtol=1e-6)
    np.testing.assert_array_equal(params["ln_f.weight"], before["ln_f.weight"])


def test_clip_grad_norm():
    grads = {"a": np.array([3.0, 0.0], np.float32), "b": np.array([[4.0]], np.float32)}
    assert clip_grad_norm(grads, 10.0) == pytest.approx(5.0)
    assert grads["a"][0] == 3.0  # under the limit: untouched
    assert clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    assert np.sqrt(grads["a"][0] ** 2 + grads["b"][0, 0] ** 2) == pytest.approx(1.0, rel=1e-5)


def test_batches_are_shifted_windows():
    tokens = np.arange(100, dtype=np.int32)
    x, y = sample_batch(tokens, 4, 10, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 10)
    np.testing.assert_array_equal(y, x + 1)
    batches = heldout_batches(tokens, batch_size=2, ctx=10, max_batches=2)
    assert len(batches) == 2 and all(bx.shape == (2, 10) for bx, _ in batches)
    starts = sorted(int(bx[i, 0]) for bx, _ in batches for i in range(2))
    assert starts[0] == 0 and len(set(starts)) == 4  # spread out, no repeats
    short = heldout_batches(np.arange(5, dtype=np.int32), batch_size=4, ctx=10, max_batches=3)
    assert len(short) == 1 and short[0][0].shape == (1, 4)
    assert heldout_batches(np.arange(1, dtype=np.int32), 4, 10, 3) == []


# ------------------------------------------------------------------ the loop

SMALL = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_ctx=16, vocab_size=40)


def small_data(seed: int = 0) -> TokenData:
    """A repetitive token stream (learnable) plus held-out tokens from the same pattern."""
    rng = np.random.default_rng(seed)
    pattern = rng.integers(0, SMALL.vocab_size, 30)
    stream = np.tile(pattern, 40).astype(np.int32)
    return TokenData(stream[:1000], stream[1000:1150])


def test_tiny_model_overfits_a_short_text():
    config = GPT2Config(n_layer=1, n_head=2, n_embd=32, n_ctx=16, vocab_size=30)
    tokens = np.random.default_rng(5).integers(0, 30, 65).astype(np.int32)
    ids = np.stack([tokens[i * 16:(i + 1) * 16] for i in range(4)])
    targets = np.stack([tokens[i * 16 + 1:(i + 1) * 16 + 1] for i in range(4)])
    tc = TrainConfig(steps=150, warmup=10, lr=1e-2, weight_decay=0.0)
    state = new_state(config, tc)
    first = None
    for step in range(tc.steps):
        loss, grads = model_forward_backward(state.params, config, ids, targets)
        first = loss if first is None else first
        clip_grad_norm(grads, tc.grad_clip)
        adamw_update(state.params, grads, state.m, state.v, step + 1, learning_rate(step, tc), tc)
    assert first > 3.0  # about log(30) at the start
    assert model_loss(state.params, config, ids, targets) < 0.05


def run(folder: Path, steps: int = 8, stop_at: int | None = None, state=None, **changes) -> "TrainState":
    tc = TrainConfig(steps=steps, batch_size=4, ctx=8, warmup=2, lr=3e-3, eval_every=4, eval_batches=2,
                     **changes)
    state = state or new_state(SMALL, tc)
    stop = (lambda s: s.step == stop_at) if stop_at else None
    return train(folder, state, SMALL, tc, small_data(), {"eot_id": 39}, progress=False,
                 stop_requested=stop, log=lambda text: None)


def test_training_lowers_loss_and_is_deterministic(tmp_path):
    a = run(tmp_path / "a", steps=30)
    b = run(tmp_path / "b", steps=30)
    assert a.losses == b.losses and len(a.losses) == 30
    assert np.mean(a.losses[-5:]) < a.losses[0] - 0.5
    assert [e[0] for e in a.evals] == [4, 8, 12, 16, 20, 24, 28, 30]
    assert a.evals[-1][1] < a.evals[0][1]
    assert [e[0] for e in a.copy_evals] == [e[0] for e in a.evals]  # copying measured at every evaluation
    assert a.copy_evals == b.copy_evals and all(np.isfinite(e[1:]).all() for e in a.copy_evals)
    c = run(tmp_path / "c", steps=30, seed=1)
    assert c.losses != a.losses
    d = run(tmp_path / "d", steps=30, dropout=0.1)
    assert d.losses != a.losses


def test_resume_gives_the_same_result_as_uninterrupted(tmp_path):
    whole = run(tmp_path / "whole", steps=10)
    with pytest.raises(Interrupted) as stopped:
        run(tmp_path / "parts", steps=10, stop_at=6)
    assert stopped.value.step == 6
    state, config, tc, record = load_checkpoint(tmp_path / "parts")
    assert state.step == 6 and config == SMALL and record == {"eot_id": 39}
    resumed = run(tmp_path / "parts", steps=10, state=state)
    assert resumed.losses == whole.losses
    assert resumed.evals == whole.evals
    assert resumed.copy_evals == whole.copy_evals  # kept in the checkpoint, continued on resume
    for name in whole.params:
        np.testing.assert_array_equal(resumed.params[name], whole.params[name])
        np.testing.assert_array_equal(resumed.v[name], whole.v[name])


def test_saved_folder_loads_and_matches_the_training_forward(tmp_path):
    from corpora.tokenizers.bpe_learn import learn_bpe

    tokenizer = learn_bpe(["the cat sat on the mat, the dog sat on the log. " * 20], 262, progress=False)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=16, n_ctx=16, vocab_size=tokenizer.vocab_size)
    tokens = np.array(tokenizer.encode("the cat sat on the log, the dog on the mat. " * 30), np.int32)
    tc = TrainConfig(steps=4, batch_size=4, ctx=8, warmup=2, lr=3e-3, eval_every=4, eval_batches=2)
    state = train(tmp_path, new_state(config, tc), config, tc, TokenData(tokens[:300], tokens[300:]),
                  {"eot_id": tokenizer.eot_id}, progress=False, log=lambda text: None)
    tokenizer.save(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "model.safetensors", "training.json", CHECKPOINT_FILE} <= files
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "gpt2" and saved["n_positions"] == 16 and saved["vocab_size"] == 262
    assert saved["activation_function"] == "gelu_new" and saved["tie_word_embeddings"] is True
    assert saved["architectures"] == ["GPT2LMHeadModel"] and saved["eos_token_id"] == tokenizer.eot_id == 261
    summary = json.loads((tmp_path / "training.json").read_text())
    assert summary["steps_done"] == 4 and summary["training"]["batch_size"] == 4 and summary["eot_id"] == 261

    model, loaded_tokenizer = load_model(str(tmp_path))
    assert loaded_tokenizer.encode("the cat") == tokenizer.encode("the cat")
    ids = np.array([tokenizer.encode("the dog sat on the cat")])
    expected, _ = model_forward(state.params, config, ids)
    got, _ = model.forward(ids[0], all_positions=True)
    np.testing.assert_allclose(got, expected[0], rtol=1e-5, atol=1e-6)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    state = run(tmp_path, steps=4)
    saved = (tmp_path / CHECKPOINT_FILE).read_bytes()
    state.params["h.0.mlp.c_fc.bias"][0] = np.nan
    with pytest.raises(UserError, match=r"the loss became nan at step 5.*last good checkpoint \(step 4\)"):
        run(tmp_path, steps=8, state=state)
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == saved
    assert load_checkpoint(tmp_path)[0].step == 4


def test_evaluate_is_the_mean_token_loss():
    params = init_params(SMALL, 0)
    data = small_data()
    batches = heldout_batches(data.heldout, 4, 8, 2)
    expected = np.mean([model_loss(params, SMALL, x[i:i + 1], y[i:i + 1]) for x, y in batches for i in range(len(x))])
    assert evaluate(params, SMALL, batches) == pytest.approx(expected, rel=1e-5)
    assert evaluate(params, SMALL, batches) == pytest.approx(np.log(SMALL.vocab_size), abs=0.1)  # fresh: ~uniform


def test_copying_is_measured_on_each_copy_of_a_sequence_shown_twice():
    from transformer.copying import training_copy_set

    params = init_params(SMALL, 0)
    sequences = training_copy_set(SMALL.vocab_size, 39, SMALL.n_ctx)  # copies of 7 tokens: 1 + 2 x 7 <= 16
    assert sequences.shape == (8, 15) and (sequences[:, 0] == 39).all() and (sequences[:, 1:] != 39).all()
    assert (sequences[:, 1:8] == sequences[:, 8:]).all()
    first, second = evaluate_copying(params, SMALL, sequences)
    # attention is causal, so the first copy's losses are those of the first copy scored alone
    alone = np.mean([model_loss(params, SMALL, row[None, :7], row[None, 1:8]) for row in sequences])
    whole = np.mean([model_loss(params, SMALL, row[None, :-1], row[None, 1:]) for row in sequences])
    assert first == pytest.approx(alone, rel=1e-5) and (first + second) / 2 == pytest.approx(whole, rel=1e-5)
    assert second == pytest.approx(np.log(SMALL.vocab_size), abs=0.1)  # a fresh model cannot copy: about log V
    assert training_copy_set(SMALL.vocab_size, 39, 4) is None  # too short a context to show anything twice


def test_blas_threads_can_be_set_at_run_time():
    import os

    if not set_blas_threads(1):
        pytest.skip("NumPy's BLAS is not OpenBLAS here")
    a = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 4096
    try:
        np.testing.assert_allclose(a @ a, np.dot(a.astype(np.float64), a.astype(np.float64)), rtol=1e-5)
    finally:
        assert set_blas_threads(os.cpu_count() or 1)
