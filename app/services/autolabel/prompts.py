"""Prompts for the LLM explainer and the detection / fuzzing scorers, and strict parsers for their replies.

Marked tokens are written <<like this>>. A reply that does not follow the requested format raises LLMError
(a malformed reply is a failure, never a guess).
"""

from __future__ import annotations

import json
import re

from app.services.autolabel.llm import LLMError

SYSTEM = ("You study features of a language model's sparse autoencoder. A feature is a direction that is active on "
          "some tokens of a text. Answer exactly in the format asked for, nothing else.")


def explainer_messages(top: list[str], interval: list[str]) -> list[dict]:
    """Ask for a short label from highlighted texts (top: strongest activations; interval: weaker ones)."""
    lines = ["Texts where the feature is strongest (active tokens marked <<like this>>):"]
    lines += [f"{i}. {t}" for i, t in enumerate(top, 1)]
    if interval:
        lines.append("\nTexts where it is weaker:")
        lines += [f"{i}. {t}" for i, t in enumerate(interval, len(top) + 1)]
    lines.append("\nWhat does the feature respond to? Be specific about the tokens and their context, in at most 12 "
                 "words. Reply with one line: `Label: <your label>`.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


_LABEL_RE = re.compile(r"^\s*\**label\**\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def parse_label(reply: str) -> str:
    found = _LABEL_RE.search(reply or "")
    label = found.group(1).strip(" `*") if found else ""
    if len(label) >= 2 and label[0] == label[-1] and label[0] in "\"'":
        label = label[1:-1].strip()
    if not label:
        raise LLMError(f"explainer reply has no 'Label: ...' line: {(reply or '')[:120]!r}")
    return label[:300]


def detection_messages(label: str, texts: list[str]) -> list[dict]:
    """Does the feature fire anywhere in each text? One 0/1 per text."""
    lines = [f"Feature label: {label}", "", "Texts:"] + [f"{i}. {t}" for i, t in enumerate(texts, 1)]
    lines.append(f"\nFor each of the {len(texts)} texts, would this feature be active somewhere in it? Reply with a "
                 f"JSON list of {len(texts)} numbers, 1 for yes and 0 for no, e.g. [1, 0, ...].")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def fuzzing_messages(label: str, texts: list[str]) -> list[dict]:
    """Are the marked tokens of each text what the label describes? One 0/1 per text."""
    lines = [f"Feature label: {label}", "", "Texts (some tokens marked <<like this>>):"]
    lines += [f"{i}. {t}" for i, t in enumerate(texts, 1)]
    lines.append(f"\nFor each of the {len(texts)} texts, are the marked tokens ones this feature would be active on? "
                 f"Reply with a JSON list of {len(texts)} numbers, 1 for yes and 0 for no, e.g. [1, 0, ...].")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def parse_binary_list(reply: str, n: int) -> list[int]:
    """The last JSON list in the reply; must hold exactly n values, each 0 or 1 (true/false accepted)."""
    found = re.findall(r"\[[^\[\]]*\]", reply or "")
    if not found:
        raise LLMError(f"reply has no JSON list: {reply[:120]!r}")
    try:
        values = json.loads(found[-1])
    except ValueError:
        raise LLMError(f"reply list is not valid JSON: {found[-1][:120]!r}") from None
    if len(values) != n:
        raise LLMError(f"reply list has {len(values)} values for {n} texts")
    out = []
    for v in values:
        if v in (0, 1) and not isinstance(v, float) or isinstance(v, bool):
            out.append(int(v))
        else:
            raise LLMError(f"reply list holds {v!r}; only 0 and 1 are accepted")
    return out
