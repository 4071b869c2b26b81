"""What a feature does to the model's output (issue 18): ablation effects on its top examples, and the tokens it
promotes when added on neutral prompts.

- :func:`ablation_effects`: on each context, splice the SAE in with its error term and clamp the feature to 0 at
  its hook (every position; :mod:`app.ml.steering`'s clamp). At the positions where the feature fires on the
  clean run, compare the next-token distributions: the mean rise in next-token loss (nats) and the mean
  ``KL(p_clean ‖ p_ablated)`` (nats). Later positions, reached only through attention, are not counted.
- :func:`promoted_tokens`: add ``strength × W_dec[i]`` at every position of each neutral prompt; the tokens whose
  next-token probability after the prompt rises most, averaged over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

import torch

from app.ml.hooks import hooked
from app.ml.lm import LanguageModel
from app.ml.sae import SAE
from app.ml.steering import Intervention, RowSpec, _plans, prompt_token_ids


def _logits(lm: LanguageModel, ids: torch.Tensor, hook: str | None = None, fn=None, capture: dict | None = None):
    """Logits ``[batch, pos, vocab]`` (float32) of ``ids: [batch, pos]``, with ``fn`` replacing the activation at
    ``hook`` and/or the activation there stored in ``capture["acts"]``."""
    def at_hook(acts):
        out = fn(acts) if fn is not None else acts
        if capture is not None:
            capture["acts"] = acts
        return out

    with ExitStack() as stack, torch.inference_mode():
        if hook is not None:
            stack.enter_context(hooked(lm, hook, at_hook))
        return lm.model(input_ids=ids.to(lm.device), use_cache=False).logits.float()


def _hidden(lm: LanguageModel, ids: torch.Tensor, hook: str, fn) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(the decoder stack's output, i.e. the unembedding's input ``[batch, pos, d_model]``, the activation at
    ``hook`` before ``fn``)."""
    captured: dict = {}

    def at_hook(acts):
        captured["acts"] = acts
        return fn(acts) if fn is not None else acts

    def at_base(_module, _args, output):
        captured["hidden"] = output[0] if isinstance(output, tuple) else output.last_hidden_state

    with ExitStack() as stack, torch.inference_mode():
        stack.enter_context(hooked(lm, hook, at_hook))
        handle = lm.model.base_model.register_forward_hook(at_base)  # the decoder stack + final norm
        stack.callback(handle.remove)
        # logits_to_keep=1: the head runs on one position here; the positions that count are unembedded below
        lm.model(input_ids=ids.to(lm.device), use_cache=False, **_keep_one(lm))
    return captured["hidden"], captured["acts"]


def _keep_one(lm: LanguageModel) -> dict:
    import inspect

    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(type(lm.model).forward).parameters else {}


def _next_token_logp(lm: LanguageModel, hidden: torch.Tensor) -> torch.Tensor:
    """``hidden: [k, d_model]`` (unembedding inputs) → next-token log-probabilities ``[k, vocab]``, as the model's
    own head computes them (Gemma 2's final soft-capping included)."""
    logits = lm.model.get_output_embeddings()(hidden).float()
    cap = getattr(lm.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits, dim=-1)


def ablation_effects(lm: LanguageModel, sae: SAE, feature: int, contexts: torch.Tensor,
                     upto: int | None = None) -> dict:
    """``contexts: [n, pos]`` token ids → ``{"delta_loss", "kl", "n_positions"}`` over the positions (but the last)
    where ``feature`` fires on the clean run; zeros with n_positions 0 when it never fires there.

    ``upto``: count positions before it only (a caller that knows where the feature last fires, from the stored
    example activations, saves the forward passes over the rest). Only the counted positions go through the
    unembedding, and the ablated pass is cut after the last of them (nothing later can change them)."""
    hook = sae.cfg.hook_name
    if upto is not None:
        contexts = contexts[:, :max(2, min(upto + 1, contexts.shape[1]))]
    hidden_clean, acts = _hidden(lm, contexts, hook, None)
    with torch.inference_mode():
        fires = (sae.feature_encoder([feature])(acts)[..., 0] > 0)[:, :-1]  # [n, pos-1]
    n_positions = int(fires.sum())
    if n_positions == 0:
        return {"delta_loss": 0.0, "kl": 0.0, "n_positions": 0}
    keep = int(fires.nonzero()[:, 1].max()) + 1  # positions 0..keep-1 hold every counted one
    contexts, fires = contexts[:, :keep + 1], fires[:, :keep]
    rows = [RowSpec(f"c{i}", (Intervention(sae, feature, 0.0),), "clamp") for i in range(contexts.shape[0])]
    plan = _plans(rows, seed=0)[0][hook]
    hidden_ablated, _ = _hidden(lm, contexts[:, :keep], hook, plan)
    with torch.inference_mode():
        logp_clean = _next_token_logp(lm, hidden_clean[:, :keep][fires])  # [k, vocab]
        logp_ablated = _next_token_logp(lm, hidden_ablated[fires])
        target = contexts[:, 1:keep + 1].to(lm.device)[fires][:, None]
        delta = (logp_clean.gather(-1, target) - logp_ablated.gather(-1, target))[:, 0]  # nll_ablated − nll_clean
        kl = (logp_clean.exp() * (logp_clean - logp_ablated)).sum(-1)
        return {"delta_loss": float(delta.mean()), "kl": float(kl.mean()), "n_positions": n_positions}


def promoted_tokens(lm: LanguageModel, sae: SAE, features: Sequence[int], strengths: Sequence[float],
                    prompts: Sequence[str], k: int = 10) -> list[list[dict]]:
    """Per feature (added at its strength, additive, one batch row each): the ``k`` tokens whose probability as
    the next token after each prompt rises most, averaged over prompts →
    ``[[{"token_id", "delta_prob", "prob_clean", "prob_steered"}]]``."""
    n = len(features)
    rows = [RowSpec(f"f{f}", (Intervention(sae, f, s),), "additive") for f, s in zip(features, strengths)]
    hook = sae.cfg.hook_name_out
    total_clean = total_steered = None
    for prompt in prompts:
        ids = torch.tensor([prompt_token_ids(lm, prompt)])
        plan = _plans(rows, seed=0)[0][hook]
        clean = torch.softmax(_logits(lm, ids)[:, -1], dim=-1)  # [1, vocab]
        steered = torch.softmax(_logits(lm, ids.expand(n, -1), hook, fn=plan)[:, -1], dim=-1)  # [n, vocab]
        total_clean = clean if total_clean is None else total_clean + clean
        total_steered = steered if total_steered is None else total_steered + steered
    p_clean, p_steered = total_clean / len(prompts), total_steered / len(prompts)
    delta = p_steered - p_clean
    top = delta.topk(k, dim=-1)
    out = []
    for r in range(n):
        out.append([{"token_id": int(t), "delta_prob": float(d), "prob_clean": float(p_clean[0, t]),
                     "prob_steered": float(p_steered[r, t])} for d, t in zip(top.values[r], top.indices[r])])
    return out
