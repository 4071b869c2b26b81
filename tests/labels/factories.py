"""Rows for label tests, written through the models: a source with a few features, accounts with API keys."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.services import passwords
from app.services.actor import Actor
from app.store import accounts as qa
from app.store.models import Feature, Source

PASSWORD = "correct horse battery"


def make_source(session: Session, name: str = "lab-sae", n_features: int = 8, densities=None) -> Source:
    """A source with `n_features` features; feature i has density densities[i] (default i / 100)."""
    source = Source(name=name, model_name="tiny-model", sae_path="/nowhere", hook_name="blocks.0.hook_resid_post",
                    architecture="standard", d_in=16, d_sae=n_features, cfg={"neuronpedia_id": "tiny-model/0-res"},
                    corpus={}, params={}, health={}, n_tokens=1000, n_contexts=10, status="complete")
    session.add(source)
    session.flush()
    for i in range(n_features):
        density = densities[i] if densities is not None else i / 100
        session.add(Feature(source_id=source.id, index=i, n_active=10 * i, density=density, max_act=1.0 + i,
                            mean_act=0.5, act_hist={}, intervals=[], bottom_logits=[], logit_hist={}, neighbours=[],
                            top_logits=[{"token_id": 1, "token": f"tok{i}", "value": 0.5}]))
    session.commit()
    return source


def make_account(session: Session, username: str, role: str = "labeler", password: str | None = PASSWORD,
                 with_key: bool = True) -> tuple[Actor, str | None]:
    """(the account, a fresh API key token or None)."""
    account = qa.create_account(session, username, passwords.hash_password(password) if password else None, role)
    token = None
    if with_key:
        token, prefix, key_hash = passwords.new_api_key()
        qa.create_api_key(session, account.id, "test", prefix, key_hash)
    session.commit()
    return Actor(account.id, account.username, account.role), token
