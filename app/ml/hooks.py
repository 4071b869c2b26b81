"""Hook points on Hugging Face decoder stacks, activation capture and activation replacement.

Hook names follow TransformerLens (what SAELens cfg.json files carry); shapes ``[batch, pos, d]``:

- ``blocks.N.hook_resid_pre``       input of block N                              d_model
- ``blocks.N.hook_resid_mid``       resid_pre + attention output (not on parallel blocks)  d_model
- ``blocks.N.hook_resid_post``      output of block N                             d_model
- ``blocks.N.hook_attn_out``        attention output (after Gemma's post-attention norm)   d_model
- ``blocks.N.hook_mlp_out``         MLP output (after Gemma's post-feedforward norm)       d_model
- ``blocks.N.hook_mlp_in``          what the MLP branch reads, before its norm             d_model
- ``blocks.N.ln1.hook_normalized``  the attention's normalised input                       d_model
- ``blocks.N.ln2.hook_normalized``  the MLP's normalised input                             d_model
- ``blocks.N.attn.hook_z``          per-head outputs before W_O, flattened as SAELens' hook_z
                                    reshape does: ``(n_heads d_head)``            n_heads * d_head
- ``blocks.N.mlp.hook_post``        the MLP hidden activation (input of W_out)               d_mlp

A plain module path means that module's output; ``<path>.output`` and ``<path>.input`` (the
spelling of SAELens' ``hf_hook_name``) pick a side explicitly. Paths are looked up on the model
and then on its base model (``layers.3.mlp`` as sparsify writes it). Supported layer stacks:
``transformer.h`` (GPT-2), ``gpt_neox.layers`` (GPT-NeoX/Pythia), ``model.layers`` (Llama,
Gemma, Qwen, Mistral), ``model.language_model.layers`` (multimodal Gemma 3).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from app.ml.blocks import block_parts
from app.ml.errors import LoadError
from app.ml.lm import LanguageModel

LAYER_STACKS = ("transformer.h", "gpt_neox.layers", "model.layers", "model.language_model.layers",
                "language_model.model.layers")
TL_HOOK_KINDS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out",
                 "hook_mlp_in", "ln1.hook_normalized", "ln2.hook_normalized", "attn.hook_z", "mlp.hook_post")
# Hooks whose width is the residual stream's (the rest are probed with a forward pass).
RESIDUAL_WIDTH_KINDS = TL_HOOK_KINDS[:8]
_TL_HOOK = re.compile(r"^blocks\.(\d+)\.(" + "|".join(re.escape(k) for k in TL_HOOK_KINDS) + r")$")

ActivationFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class HookPoint:
    """Where an activation lives: ``module``'s input or output.

    ``residual_block`` is set for ``hook_resid_mid``: the tensor is read at the pre-MLP norm's
    input, and a replacement must also reach the residual stream, so the block's output gets the
    same change added.
    """

    name: str  # canonical: "blocks.3.hook_resid_post" or the module path as given
    module: nn.Module
    io: Literal["input", "output"]
    layer: int | None
    module_path: str
    residual_block: nn.Module | None = None


class _StopForward(Exception):
    """Raised from a hook once every requested activation is captured."""


def _model_of(lm_or_model: LanguageModel | nn.Module) -> nn.Module:
    return lm_or_model.model if isinstance(lm_or_model, LanguageModel) else lm_or_model


def find_layer_stack(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The decoder blocks as ``(path, ModuleList)``; LoadError naming the model otherwise."""
    for path in LAYER_STACKS:
        stack = _get(model, path)
        if isinstance(stack, nn.ModuleList):
            return path, stack
    raise LoadError(
        f"{type(model).__name__}: no decoder layer stack found (supported: "
        f"{', '.join(LAYER_STACKS)}); use a plain module path as hook_name instead"
    )


def _get(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


def _module_path_hook(model: nn.Module, hook_name: str) -> HookPoint:
    stem, io = hook_name, "output"
    for side in ("input", "output"):
        if hook_name.endswith("." + side) and _get(model, hook_name) is None:
            stem, io = hook_name[: -len(side) - 1], side
    roots = [("", model)]
    base = getattr(model, "base_model", None)
    if isinstance(base, nn.Module) and base is not model:
        prefix = next((n for n, m in model.named_children() if m is base), None)
        if prefix:
            roots.append((prefix + ".", base))
    for prefix, root in roots:
        module = _get(root, stem)
        if module is not None:
            path = prefix + stem
            return HookPoint(hook_name, module, io, _layer_of_path(path), path)
    stack = next((p for p in LAYER_STACKS if _get(model, p) is not None), None)
    example = f"{stack}.0" if stack else next(iter(dict(model.named_children())), "?")
    raise LoadError(
        f"{hook_name}: not a hook name (blocks.N.{{{','.join(TL_HOOK_KINDS)}}}) nor a module of "
        f"{type(model).__name__} (module paths look like {example!r}, optionally ending in .input/.output)"
    )


def resolve_hook(lm_or_model: LanguageModel | nn.Module, hook_name: str) -> HookPoint:
    """Map a TransformerLens-style hook name or a module path to a :class:`HookPoint`.

    Anything that cannot be placed exactly on this model is a LoadError naming what exists.
    """
    model = _model_of(lm_or_model)
    match = _TL_HOOK.match(hook_name)
    if match is None:
        if hook_name.startswith("blocks."):
            raise LoadError(
                f"{hook_name}: unknown hook; valid names are blocks.N.{{{','.join(TL_HOOK_KINDS)}}}"
                " or a module path of the model"
            )
        return _module_path_hook(model, hook_name)

    layer, kind = int(match.group(1)), match.group(2)
    stack_path, stack = find_layer_stack(model)
    if layer >= len(stack):
        raise LoadError(f"{hook_name}: model has {len(stack)} layers (0-{len(stack) - 1})")
    block_path = f"{stack_path}.{layer}"
    block = stack[layer]

    def at(rel: str, io: Literal["input", "output"], residual_block: nn.Module | None = None) -> HookPoint:
        return HookPoint(hook_name, block.get_submodule(rel), io, layer, f"{block_path}.{rel}", residual_block)

    if kind == "hook_resid_pre":
        return HookPoint(hook_name, block, "input", layer, block_path)
    if kind == "hook_resid_post":
        return HookPoint(hook_name, block, "output", layer, block_path)
    parts = block_parts(block, block_path, hook_name)
    if kind == "hook_attn_out":
        return at(parts.post_attn_norm, "output") if parts.post_attn_norm else at(parts.attn, "output")
    if kind == "hook_mlp_out":
        return at(parts.post_mlp_norm, "output") if parts.post_mlp_norm else at(parts.mlp, "output")
    if kind == "hook_mlp_in":
        return at(parts.pre_mlp_norm, "input")
    if kind == "hook_resid_mid":
        if parts.parallel:
            raise LoadError(f"{hook_name}: block {block_path} computes attention and MLP in parallel "
                            "(use_parallel_residual), so it has no resid_mid; use hook_resid_pre or hook_mlp_in")
        return at(parts.pre_mlp_norm, "input", residual_block=block)
    if kind == "ln1.hook_normalized":
        return at(parts.pre_attn_norm, "output")
    if kind == "ln2.hook_normalized":
        return at(parts.pre_mlp_norm, "output")
    if kind == "attn.hook_z":
        return at(parts.attn_out_proj, "input")
    return at(parts.mlp_down_proj, "input")  # mlp.hook_post


def _layer_of_path(path: str) -> int | None:
    for stack in LAYER_STACKS:
        m = re.match(re.escape(stack) + r"\.(\d+)(\.|$)", path)
        if m:
            return int(m.group(1))
    return None


def _first(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    raise TypeError(f"hooked module returned {type(value).__name__}, expected a tensor or tuple")


def _replace_first(value: Any, new: torch.Tensor) -> Any:
    if isinstance(value, torch.Tensor):
        return new
    return (new, *value[1:])


def _input_of(args: tuple, kwargs: dict) -> torch.Tensor:
    if args and isinstance(args[0], torch.Tensor):
        return args[0]
    if isinstance(kwargs.get("hidden_states"), torch.Tensor):
        return kwargs["hidden_states"]
    raise TypeError("module called without a tensor as first argument or hidden_states keyword")


class _Handles:
    def __init__(self, *handles) -> None:
        self.handles = handles

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _register(point: HookPoint, fn: Callable[[torch.Tensor], torch.Tensor | None]) -> _Handles:
    """Register ``fn(acts)``; a returned tensor replaces the activation, None leaves it."""
    if point.io == "output":

        def hook(_module, _args, output):
            new = fn(_first(output))
            return None if new is None else _replace_first(output, new)

        return _Handles(point.module.register_forward_hook(hook))

    pending: list[torch.Tensor] = []  # resid_mid: the change still to add to the block output

    def pre_hook(_module, args, kwargs):
        acts = _input_of(args, kwargs)
        new = fn(acts)
        if new is None:
            return None
        if point.residual_block is not None:
            pending.append(new - acts)
        if args and args[0] is acts:
            return (new, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": new}

    handles = [point.module.register_forward_pre_hook(pre_hook, with_kwargs=True)]
    if point.residual_block is not None:

        def block_hook(_module, _args, output):
            if not pending:
                return None
            return _replace_first(output, _first(output) + pending.pop())

        handles.append(point.residual_block.register_forward_hook(block_hook))
    return _Handles(*handles)


def capture_activations(
    lm_or_model: LanguageModel | nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    hook_names: Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """Run the model on ``input_ids: [batch, pos]`` and return ``{hook_name: [batch, pos, d]}``.

    Every name is resolved before the forward pass (a bad one fails before any work). The pass
    stops right after the last requested hook fires: later layers, the final norm and the
    unembedding are never computed. Runs under ``torch.inference_mode``.
    """
    if not hook_names:
        raise ValueError("capture_activations needs at least one hook name")
    model = _model_of(lm_or_model)
    points = {name: resolve_hook(model, name) for name in hook_names}
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def make_fn(name: str):
        def fn(acts: torch.Tensor) -> None:
            captured[name] = acts
            if len(captured) == len(points):
                raise _StopForward
            return None

        return fn

    device = next(model.parameters()).device
    try:
        for name, point in points.items():
            handles.append(_register(point, make_fn(name)))
        with torch.inference_mode():
            try:
                model(
                    input_ids=input_ids.to(device),
                    attention_mask=None if attention_mask is None else attention_mask.to(device),
                    use_cache=False,
                )
            except _StopForward:
                pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in points if name not in captured]
    if missing:
        raise RuntimeError(f"hooks never fired during the forward pass: {', '.join(missing)}")
    return captured


@contextmanager
def hooked(
    lm_or_model: LanguageModel | nn.Module, hook_name: str, fn: ActivationFn
) -> Iterator[HookPoint]:
    """Replace the activation at ``hook_name`` by ``fn(acts: [batch, pos, d]) -> [batch, pos, d]``
    for every forward pass inside the ``with`` block (steering, splicing an SAE in)."""
    point = resolve_hook(lm_or_model, hook_name)

    def checked(acts: torch.Tensor) -> torch.Tensor:
        new = fn(acts)
        if not isinstance(new, torch.Tensor) or new.shape != acts.shape:
            got = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new).__name__
            raise ValueError(f"{hook_name}: replacement must have shape {tuple(acts.shape)}, got {got}")
        return new.to(acts.dtype)

    handle = _register(point, checked)
    try:
        yield point
    finally:
        handle.remove()
