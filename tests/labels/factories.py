"""Label tests' world: a source with a few features (tests/fixtures.add_source), accounts with API keys."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.services import passwords
from app.services.actor import Actor
from app.store import accounts as qa
from tests.fixtures import add_source

PASSWORD = "correct horse battery"


def make_source(target, name: str = "lab-sae", n_features: int = 8, densities=None) -> int:
    """A source of `n_features` features written through the fixture world's add_source; feature i has density
    densities[i] (default i / 100, so feature 0 is dead)."""
    return add_source(target, name=name, model_name="tiny-model", d_sae=n_features, d_in=16,
                      hook_name="blocks.0.hook_resid_post", cfg={"neuronpedia_id": "tiny-model/0-res"},
                      densities=list(densities) if densities is not None else [i / 100 for i in range(n_features)])


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
