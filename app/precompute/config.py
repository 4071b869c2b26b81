"""The settings of one precompute run (no torch here, so the CLI can build its parser cheaply)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from app.errors import Invalid

IF_EXISTS = ("error", "replace", "skip")

# The one list of fields that cannot change a row a run writes (where it writes and checkpoints, how
# it reports, what it does with an existing source). They are kept out of Source.params, so reruns
# compare equal, and out of the checkpoint fingerprint, so a resumed run may change them.
RESULT_NEUTRAL_FIELDS = ("database_url", "checkpoint_dir", "progress", "checkpoint_every_s", "if_exists",
                         "match_memory_mb")


class PrecomputeError(Invalid, ValueError):
    """A precompute request that cannot run as asked."""


@dataclass(frozen=True)
class PrecomputeConfig:
    """Settings of one precompute run; validated at construction."""

    model: str
    saes: tuple[str, ...]
    corpus: str = "demo"
    n_tokens: int = 1_000_000
    context_size: int | None = None  # None: the SAEs' context_size, else 128
    batch_size: int = 32  # contexts per forward pass
    top_k: int = 20
    n_intervals: int = 5
    examples_per_interval: int = 5
    hist_bins: int = 50
    n_logits: int = 10
    n_neighbours: int = 10
    n_matches: int = 5  # best matches kept per feature in each other SAE of the run (by correlation, by cosine)
    n_coactive: int = 10  # most co-active features kept per feature
    match_tokens: int = 65_536  # tokens (evenly spaced batches) matches and co-activation are measured on; 0: all
    match_memory_mb: int = 512  # products held at once while matching; narrower feature blocks when short
    seed: int = 0
    database_url: str = "sqlite:///data/featureboard.db"
    checkpoint_dir: str = "data/precompute"
    source_names: tuple[str, ...] = ()
    text_field: str = "text"
    device: str = "auto"
    dtype: str = "float32"
    if_exists: str = "error"  # error | replace | skip (a complete source of the same name)
    health_contexts: int = 32
    checkpoint_every_s: float = 60.0
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "saes", tuple(str(s) for s in self.saes))
        object.__setattr__(self, "source_names", tuple(self.source_names))
        if not self.saes:
            raise PrecomputeError("at least one SAE (--sae) is needed")
        for name in ("n_tokens", "batch_size", "top_k", "n_intervals", "examples_per_interval", "hist_bins",
                     "n_logits", "n_neighbours", "n_matches", "n_coactive", "match_memory_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PrecomputeError(f"{name} must be a positive integer, got {value!r}")
        if self.context_size is not None and (not isinstance(self.context_size, int) or self.context_size < 2):
            raise PrecomputeError(f"context_size must be an integer >= 2, got {self.context_size!r}")
        if self.source_names and len(self.source_names) != len(self.saes):
            raise PrecomputeError(f"{len(self.source_names)} source names for {len(self.saes)} SAEs; give one per SAE")
        if self.if_exists not in IF_EXISTS:
            raise PrecomputeError(f"if_exists must be one of {', '.join(IF_EXISTS)}, got {self.if_exists!r}")
        if self.health_contexts < 0 or self.checkpoint_every_s < 0:
            raise PrecomputeError("health_contexts and checkpoint_every_s must be >= 0")
        if isinstance(self.match_tokens, bool) or not isinstance(self.match_tokens, int) or self.match_tokens < 0:
            raise PrecomputeError(f"match_tokens must be an integer >= 0 (0: every token), got {self.match_tokens!r}")


def source_params(config: PrecomputeConfig) -> dict:
    """The fields that shape the result: stored as Source.params and hashed into the run fingerprint."""
    return {k: v for k, v in asdict(config).items() if k not in RESULT_NEUTRAL_FIELDS}
