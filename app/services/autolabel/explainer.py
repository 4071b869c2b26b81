"""The LLM explainer ("auto:llm"): a label written from highlighted explain-set examples (top and interval)."""

from __future__ import annotations

from app.services.autolabel.data import FeatureExamples
from app.services.autolabel.drafts import Draft
from app.services.autolabel.llm import ChatClient
from app.services.autolabel.prompts import explainer_messages, parse_label


async def llm_draft(feature: FeatureExamples, client: ChatClient, n_top: int = 10, n_interval: int = 6) -> Draft | None:
    """Raises LLMError on a provider error or a reply without a label; None when the feature has no examples."""
    explain = feature.explain_set
    top = [feature.window(e).highlighted() for e in explain if e.kind == "top"][:n_top]
    interval = [feature.window(e).highlighted() for e in explain if e.kind == "interval"][:n_interval]
    if not top and not interval:
        return None
    reply = await client.chat(explainer_messages(top, interval))
    label = parse_label(reply)
    return Draft(method="auto:llm", text=label,
                 description=f"Written by {client.config.model} from {len(top)} top and {len(interval)} interval "
                             f"examples.",
                 details={"model": client.config.model, "examples": len(top) + len(interval)})
