"""The handful of numbers that fix a GPT-2 model's shape.

GPT-2 small is `GPT2Config()` with its defaults: 12 layers, 12 heads, 768-wide
residual stream, 1024 positions, 50,257 tokens. Hugging Face writes the same numbers
to `config.json`; `GPT2Config.from_json` reads that file.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from corpora.common import UserError
from corpora.validate import check_fits_in_memory, check_int, check_positive_float, read_json_file

#: The range each shape number may take: generous (GPT-2 XL is 48 layers, 1600 wide,
#: 25 heads), but small enough that no check allocates or loops for long.
LIMITS = {
    "n_layer": (1, 256),
    "n_head": (1, 1024),
    "n_embd": (1, 65_536),
    "n_ctx": (1, 1_048_576),
    "vocab_size": (1, 10_000_000),
}

#: config.json is a few hundred bytes; anything over this is not a config.
MAX_CONFIG_BYTES = 1_000_000


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
        """Every field an integer in its range (floats and bools refused, not rounded),
        n_embd divisible by n_head, epsilon a finite positive number."""
        for name, (lo, hi) in LIMITS.items():
            check_int(name, getattr(self, name), lo, hi, "config")
        check_positive_float("layer_norm_epsilon", self.layer_norm_epsilon, 1.0, "config")
        if self.n_embd % self.n_head:
            raise UserError(f"config: n_embd ({self.n_embd}) is not divisible by n_head ({self.n_head})")

    @property
    def parameter_count(self) -> int:
        """How many numbers the weights hold (tied output layer counted once)."""
        c = self.n_embd
        per_block = 12 * c * c + 13 * c  # c_attn 3c²+3c, c_proj c²+c, c_fc 4c²+4c, mlp proj 4c²+c, 2 norms 4c
        return (self.vocab_size + self.n_ctx) * c + self.n_layer * per_block + 2 * c

    def check_fits_in_memory(self) -> None:
        """Refuse up front a shape whose float32 weights the machine could not hold."""
        check_fits_in_memory(4 * self.parameter_count, f"a model of this config.json ({self.parameter_count:,} weights)")

    @property
    def head_dim(self) -> int:
        """Width of one attention head (n_embd / n_head; 64 for GPT-2 small)."""
        return self.n_embd // self.n_head

    @classmethod
    def from_dict(cls, data: dict) -> "GPT2Config":
        """Build from a Hugging Face style dict (`n_positions` or `n_ctx` for the window)."""
        n_ctx = data.get("n_positions", data.get("n_ctx", cls.n_ctx))
        return cls(  # the values as given: __post_init__ refuses floats instead of truncating them
            n_layer=data.get("n_layer", cls.n_layer),
            n_head=data.get("n_head", cls.n_head),
            n_embd=data.get("n_embd", cls.n_embd),
            n_ctx=n_ctx,
            vocab_size=data.get("vocab_size", cls.vocab_size),
            layer_norm_epsilon=data.get("layer_norm_epsilon", cls.layer_norm_epsilon),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> "GPT2Config":
        """Read a Hugging Face `config.json`."""
        path = Path(path)
        if not path.exists():
            raise UserError(f"no config.json in {path.parent}")
        data = read_json_file(path, MAX_CONFIG_BYTES, what="config.json")
        if not isinstance(data, dict):
            raise UserError(f"{path} should hold a JSON object")
        try:
            return cls.from_dict(data)
        except UserError as err:
            raise UserError(f"{path}: {str(err).removeprefix('config: ')}") from None

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return asdict(self)
