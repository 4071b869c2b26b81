"""SAE architectures, registered by name as SAELens registers them (``cfg["architecture"]``).

Each module here declares one architecture (or a variant pair differing by one flag): its
parameter shapes, its extra cfg.json fields and its ``encode`` / ``decode``; it registers itself
with :func:`register` when imported. Adding an architecture is one module plus one line below.

The names are SAELens 6's inference registry: standard, gated, jumprelu, topk, abstopk,
transcoder, skip_transcoder, jumprelu_transcoder, jumprelu_skip_transcoder, matching_pursuit,
temporal. (SAELens saves batchtopk and matryoshka_batchtopk SAEs for inference as jumprelu.)
Featureboard adds groupmax, topk_transcoder and topk_skip_transcoder for sparsify checkpoints.
"""

from __future__ import annotations

# Import order is the registry's order (and the order error messages list the names).
# Not in SAELens: what EleutherAI sparsify checkpoints need (app/ml/formats/sparsify.py).
from app.ml.architectures import (
    abstopk,  # noqa: E402,F401
    gated,  # noqa: E402,F401
    groupmax,  # noqa: E402,F401
    jumprelu,  # noqa: E402,F401
    jumprelu_transcoder,  # noqa: E402,F401
    matching_pursuit,  # noqa: E402,F401
    standard,  # noqa: E402,F401,I001 - importing registers it
    temporal,  # noqa: E402,F401
    topk,  # noqa: E402,F401
    topk_transcoder,  # noqa: E402,F401
    transcoder,  # noqa: E402,F401
)
from app.ml.architectures.base import REGISTRY, Architecture, get, register

__all__ = ["REGISTRY", "Architecture", "get", "register"]
