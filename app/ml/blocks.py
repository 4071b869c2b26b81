"""The anatomy of one decoder block: which child module plays which TransformerLens role.

TransformerLens places its block hooks on tensors; Hugging Face families name the modules
that produce them differently. This table is what :mod:`app.ml.hooks` reads:

=================  ==========  ======================  =====================  ===================
role               GPT-2       GPT-NeoX                Llama/Qwen/Mistral     Gemma 2/3
=================  ==========  ======================  =====================  ===================
pre-attn norm      ln_1        input_layernorm         input_layernorm        input_layernorm
attention          attn        attention               self_attn              self_attn
attn out proj      c_proj      dense                   o_proj                 o_proj
post-attn norm     —           —                       —                      post_attention_layernorm
pre-MLP norm       ln_2        post_attention_layernorm post_attention_layernorm pre_feedforward_layernorm
MLP                mlp         mlp                     mlp                    mlp
MLP down proj      c_proj      dense_4h_to_h           down_proj              down_proj
post-MLP norm      —           —                       —                      post_feedforward_layernorm
=================  ==========  ======================  =====================  ===================

Gemma's "sandwich" norms are why ``hook_attn_out`` / ``hook_mlp_out`` are the *norm outputs*
there (TransformerLens: ``ln1_post`` / ``ln2_post`` before the hook). A block whose modules fit
none of these shapes is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from app.ml.errors import LoadError

_ATTN = ("attn", "attention", "self_attn")
_MLP = ("mlp", "feed_forward")
_PRE_ATTN_NORM = ("ln_1", "input_layernorm")
_ATTN_OUT_PROJ = ("c_proj", "dense", "o_proj", "out_proj")
_MLP_DOWN_PROJ = ("c_proj", "dense_4h_to_h", "down_proj", "fc2", "fc_out")


@dataclass(frozen=True)
class BlockParts:
    """Relative module names inside one block (None where the family has no such module)."""

    attn: str
    mlp: str
    pre_attn_norm: str
    pre_mlp_norm: str
    attn_out_proj: str
    mlp_down_proj: str
    post_attn_norm: str | None
    post_mlp_norm: str | None
    parallel: bool  # attention and MLP read the same input (GPT-NeoX use_parallel_residual)


def _first(module: nn.Module, names: Sequence[str]) -> str | None:
    return next((n for n in names if isinstance(getattr(module, n, None), nn.Module)), None)


def block_parts(block: nn.Module, block_path: str, hook_name: str) -> BlockParts:
    """Find the roles in ``block``; LoadError naming the block's children when one is missing."""
    children = ", ".join(n for n, _ in block.named_children())

    def need(names: Sequence[str], role: str, within: nn.Module | None = None, prefix: str = "") -> str:
        found = _first(within if within is not None else block, names)
        if found is None:
            where = f"{block_path}.{prefix}" if prefix else block_path
            inside = ", ".join(n for n, _ in (within if within is not None else block).named_children())
            raise LoadError(f"{hook_name}: no {role} in {where} (looked for {', '.join(names)}; "
                            f"children: {inside or children})")
        return found

    attn = need(_ATTN, "attention module")
    mlp = need(_MLP, "MLP module")
    sandwich = _first(block, ("pre_feedforward_layernorm",)) is not None
    has_post_ff = _first(block, ("post_feedforward_layernorm",)) is not None
    if has_post_ff and not sandwich:
        # OLMo-2 style (norms only after attention and MLP): TransformerLens special-cases it.
        raise LoadError(f"{hook_name}: block {block_path} has post_feedforward_layernorm but no "
                        f"pre_feedforward_layernorm; this block layout is not supported (children: {children})")
    pre_attn_norm = need(_PRE_ATTN_NORM, "pre-attention norm")
    pre_mlp_norm = need(("pre_feedforward_layernorm",) if sandwich else ("ln_2", "post_attention_layernorm"),
                        "pre-MLP norm")
    return BlockParts(
        attn=attn, mlp=mlp, pre_attn_norm=pre_attn_norm, pre_mlp_norm=pre_mlp_norm,
        attn_out_proj=f"{attn}.{need(_ATTN_OUT_PROJ, 'attention output projection', getattr(block, attn), attn)}",
        mlp_down_proj=f"{mlp}.{need(_MLP_DOWN_PROJ, 'MLP down projection', getattr(block, mlp), mlp)}",
        post_attn_norm="post_attention_layernorm" if sandwich else None,
        post_mlp_norm="post_feedforward_layernorm" if sandwich else None,
        parallel=bool(getattr(block, "use_parallel_residual", False)),
    )
