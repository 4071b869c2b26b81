"""Hook points on Hugging Face decoder stacks, activation capture and activation replacement.

Hook names follow TransformerLens (what SAELens cfg.json files carry):

- ``blocks.N.hook_resid_pre``   input of block N          (forward-pre hook on block N)
- ``blocks.N.hook_resid_post``  output of block N         (forward hook on block N)
- ``blocks.N.hook_mlp_out``     output of block N's MLP
- ``blocks.N.hook_attn_out``    output of block N's attention (element 0 when it is a tuple)

A plain module path such as ``transformer.h.1.mlp`` means that module's output.
Supported layer stacks: ``transformer.h`` (GPT-2), ``gpt_neox.layers`` (GPT-NeoX/Pythia),
``model.layers`` (Llama, Gemma, Qwen, Mistral).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from app.ml.errors import LoadError
from app.ml.lm import LanguageModel

LAYER_STACKS = ("transformer.h", "gpt_neox.layers", "model.layers")
_ATTN_NAMES = ("attn", "attention", "self_attn")
_MLP_NAMES = ("mlp", "feed_forward")
_TL_HOOK = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|hook_mlp_out|hook_attn_out)$")
TL_HOOK_KINDS = ("hook_resid_pre", "hook_resid_post", "hook_mlp_out", "hook_attn_out")

ActivationFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class HookPoint:
    """Where an activation lives: ``module``'s input (resid_pre) or output (everything else)."""

    name: str  # canonical: "blocks.3.hook_resid_post" or the module path as given
    module: nn.Module
    io: Literal["input", "output"]
    layer: int | None
    module_path: str


class _StopForward(Exception):
    """Raised from a hook once every requested activation is captured."""


def _model_of(lm_or_model: LanguageModel | nn.Module) -> nn.Module:
    return lm_or_model.model if isinstance(lm_or_model, LanguageModel) else lm_or_model


def find_layer_stack(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The decoder blocks as ``(path, ModuleList)``; LoadError naming the model otherwise."""
    for path in LAYER_STACKS:
        try:
            stack = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(stack, nn.ModuleList):
            return path, stack
    raise LoadError(
        f"{type(model).__name__}: no decoder layer stack found (supported: "
        f"{', '.join(LAYER_STACKS)}); use a plain module path as hook_name instead"
    )


def _child(block: nn.Module, names: Sequence[str], block_path: str, hook_name: str) -> str:
    for name in names:
        if isinstance(getattr(block, name, None), nn.Module):
            return name
    children = ", ".join(n for n, _ in block.named_children())
    raise LoadError(
        f"{hook_name}: block {block_path} has none of {', '.join(names)} (children: {children})"
    )


def resolve_hook(lm_or_model: LanguageModel | nn.Module, hook_name: str) -> HookPoint:
    """Map a TransformerLens-style hook name or a module path to a :class:`HookPoint`."""
    model = _model_of(lm_or_model)
    match = _TL_HOOK.match(hook_name)
    if match is None:
        if hook_name.startswith("blocks."):
            raise LoadError(
                f"{hook_name}: unknown hook; valid names are blocks.N.{{{','.join(TL_HOOK_KINDS)}}}"
                " or a module path of the model"
            )
        try:
            module = model.get_submodule(hook_name)
        except AttributeError:
            stack = next((p for p in LAYER_STACKS if _has(model, p)), None)
            example = f"{stack}.0" if stack else next(iter(dict(model.named_children())), "?")
            raise LoadError(
                f"{hook_name}: not a hook name (blocks.N.{{{','.join(TL_HOOK_KINDS)}}}) nor a "
                f"module of {type(model).__name__} (module paths look like {example!r})"
            ) from None
        layer = _layer_of_path(hook_name)
        return HookPoint(hook_name, module, "output", layer, hook_name)

    layer, kind = int(match.group(1)), match.group(2)
    stack_path, stack = find_layer_stack(model)
    if layer >= len(stack):
        raise LoadError(
            f"{hook_name}: model has {len(stack)} layers (0-{len(stack) - 1})"
        )
    block_path = f"{stack_path}.{layer}"
    block = stack[layer]
    if kind == "hook_resid_pre":
        return HookPoint(hook_name, block, "input", layer, block_path)
    if kind == "hook_resid_post":
        return HookPoint(hook_name, block, "output", layer, block_path)
    names = _MLP_NAMES if kind == "hook_mlp_out" else _ATTN_NAMES
    child = _child(block, names, block_path, hook_name)
    return HookPoint(hook_name, getattr(block, child), "output", layer, f"{block_path}.{child}")


def _has(model: nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


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
    raise TypeError("block called without hidden_states as first argument or keyword")


def _register(point: HookPoint, fn: Callable[[torch.Tensor], torch.Tensor | None]):
    """Register ``fn(acts)``; a returned tensor replaces the activation, None leaves it."""
    if point.io == "input":

        def pre_hook(_module, args, kwargs):
            acts = _input_of(args, kwargs)
            new = fn(acts)
            if new is None:
                return None
            if args and args[0] is acts:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}

        return point.module.register_forward_pre_hook(pre_hook, with_kwargs=True)

    def hook(_module, _args, output):
        new = fn(_first(output))
        return None if new is None else _replace_first(output, new)

    return point.module.register_forward_hook(hook)


def capture_activations(
    lm_or_model: LanguageModel | nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    hook_names: Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """Run the model on ``input_ids: [batch, pos]`` and return ``{hook_name: [batch, pos, d]}``.

    The forward pass stops right after the last requested hook fires: later layers, the final
    norm and the unembedding are never computed. Runs under ``torch.inference_mode``.
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
