"""The handful of numbers that fix a GPT-2 model's shape.

GPT-2 small is `GPT2Config()` with its defaults: 12 layers, 12 heads, 768-wide
residual stream, 1024 positions, 50,257 tokens. Hugging Face writes the same numbers
to `config.json`; `GPT2Config.from_json` reads that file.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from corpora.common import UserError


@dataclass(frozen=True)
class GPT2Config:
    """Shape of a GPT-2 model (defaults: GPT-2 small, 124M parameters)."""

    n_layer: int = 12  # transformer blocks stacked on the residual stream
    n_head: int = 12  # attention heads per block
    n_embd: int = 768  # width of the residual stream
    n_ctx: int = 1024  # context window: the most positions the model can see
    vocab_size: int = 50257  # rows of the token embedding (and of the output layer)
    layer_norm_epsilon: float = 1e-5  # added to the variance inside layer norm

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "n_ctx", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UserError(f"config: {name} must be a positive whole number, got {value!r}")
        if self.n_embd % self.n_head:
            raise UserError(f"config: n_embd ({self.n_embd}) is not divisible by n_head ({self.n_head})")

    @property
    def head_dim(self) -> int:
        """Width of one attention head (n_embd / n_head; 64 for GPT-2 small)."""
        return self.n_embd // self.n_head

    @classmethod
    def from_dict(cls, data: dict) -> "GPT2Config":
        """Build from a Hugging Face style dict (`n_positions` or `n_ctx` for the window)."""
        n_ctx = data.get("n_positions", data.get("n_ctx", cls.n_ctx))
        try:
            return cls(
                n_layer=int(data.get("n_layer", cls.n_layer)),
                n_head=int(data.get("n_head", cls.n_head)),
                n_embd=int(data.get("n_embd", cls.n_embd)),
                n_ctx=int(n_ctx),
                vocab_size=int(data.get("vocab_size", cls.vocab_size)),
                layer_norm_epsilon=float(data.get("layer_norm_epsilon", cls.layer_norm_epsilon)),
            )
        except (TypeError, ValueError) as err:
            raise UserError(f"config: a value is not a number ({err})") from None

    @classmethod
    def from_json(cls, path: str | Path) -> "GPT2Config":
        """Read a Hugging Face `config.json`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"no config.json in {path.parent}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UserError(f"{path} is not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise UserError(f"{path} should hold a JSON object")
        return cls.from_dict(data)

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return asdict(self)
