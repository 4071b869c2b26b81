"""All settings in one documented class.

Every field has a description; the README's settings table, `featureboard settings` and
`/-/settings.json` are all generated from this class, and a test fails when the README misses one.
Environment variables use the prefix ``FEATUREBOARD_`` (e.g. ``FEATUREBOARD_DATABASE_URL``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FIELDS = {"secret_key", "llm_api_key"}
MIN_SECRET_CHARS = 32
# Words that mark a placeholder rather than a secret (the old shipped default contained "change-me").
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "replace-me", "replaceme", "your-secret", "yoursecret",
                     "example", "default", "placeholder", "insecure", "featureboard-demo")


def weak_secret_reason(value: str) -> str | None:
    """Why ``value`` cannot sign sessions (too short, a placeholder, too few distinct characters), or None."""
    if len(value) < MIN_SECRET_CHARS:
        return f"it is {len(value)} characters long; at least {MIN_SECRET_CHARS} are needed"
    lowered = value.lower()
    word = next((w for w in PLACEHOLDER_WORDS if w in lowered), None)
    if word:
        return f"it contains {word!r}, so it looks like a placeholder, not a secret"
    if len(set(value)) < 10:
        return f"it uses only {len(set(value))} distinct characters"
    return None


class Settings(BaseSettings):
    # hide_input_in_errors: a refused secret must not be echoed into logs by the validation error.
    model_config = SettingsConfigDict(env_prefix="FEATUREBOARD_", env_file=None, extra="ignore", hide_input_in_errors=True)

    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the database. Empty means SQLite at <data_dir>/featureboard.db. "
        "PostgreSQL: postgresql+psycopg://user@host/db.",
    )
    data_dir: Path = Field(Path("data"), description="Folder for the SQLite database, precompute checkpoints and run outputs.")
    device: str = Field("auto", description="Torch device for model work: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "float32", description="Torch dtype for the language model and SAE weights (auto: bfloat16 on GPU, float32 on CPU)."
    )
    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the web server listens on.")
    demo: bool = Field(False, description="Demo mode: the shipped offline model, SAEs and corpus; open registration.")
    model: str = Field("", description="Hub id or local folder of the language model to load for live inference and steering (empty: the model of the precomputed sources, or the demo model in demo mode).")
    saes: list[str] = Field(default_factory=list, description="SAE folders (SAELens format) to load for live work; empty means the SAE paths recorded on the precomputed sources.")
    load_model: bool = Field(True, description="Load the model and SAEs at server start. Off: pages served from the database only, live and steering disabled.")
    secret_key: str = Field("", description="Key that signs session cookies and CSRF tokens, at least 32 characters (placeholders refused). Empty: a random key is generated on first start and kept in <data_dir>/secret_key (mode 0600); set one when several machines serve one database.")
    anonymous_read: bool = Field(True, description="Let visitors who are not logged in read every page.")
    open_registration: bool = Field(False, description="Let anyone create a labeler account from the login page (on in demo mode).")
    output_evidence: bool = Field(False, description="Once the model is loaded, measure output evidence (as `featureboard output-evidence` does) in the background for loaded sources that lack it, one chunk of features at a time on the model runner, so pages and model requests keep answering; resumes where it stopped (on in demo mode).")
    autolabel: bool = Field(False, description="At start, draft labels (the offline input- and output-centric drafters, as `featureboard autolabel` does) for features of complete sources that have none, then score the drafts with the embedding scorer in the background, so the canonical label of every alive feature is its best-scoring draft until a person decides; resumes where it stopped (on in demo mode, whose build ships the scores of its drafts).")
    page_cache_mb: int = Field(256, ge=0, description="Memory, in MB, each server process gives to its cache of rendered feature pages and their JSON twins (keyed by the data they show, so a label write invalidates exactly the pages it changes). 0 turns caching off; ETags and 304 answers work either way.")
    model_socket: str = Field("", description="Unix socket of the process that holds the model; a web worker with it set forwards live inference and steering there. `featureboard serve --workers N` (N > 1) sets it for its workers and starts that process itself; leave it empty otherwise.")
    max_live_chars: int = Field(4000, ge=1, description="Longest text, in characters, accepted by live inference and steering prompts.")
    max_live_tokens: int = Field(512, ge=1, description="Most tokens accepted by live inference and steering prompts.")
    model_timeout_s: float = Field(30.0, gt=0, description="Seconds a live request waits for the model before it gets 503 with Retry-After.")
    steer_rate_limit: str = Field("30/minute", description="Steering requests allowed per account or address, as N/second, N/minute or N/hour.")
    steer_fluency_budget: float = Field(2.0, gt=1.0, le=100.0, description="Calibrated default steering strength: the strongest strength of a quick sweep on the neutral prompts whose text keeps its perplexity (under the unsteered model) within this many times the unsteered text's.")
    write_rate_limit: str = Field("120/minute", description="Label, vote and comment writes allowed per account, as N/second, N/minute or N/hour.")
    login_rate_limit: str = Field("10/minute;50/hour", description="Login attempts allowed per address and, separately, per account name (the same whether or not the account exists); registrations per address and per name. N/second, N/minute, N/hour or N/day, several joined by ';'.")
    redis_url: str = Field("", description="Redis URL (redis://host:6379/0) where rate limits are counted, shared by every worker and machine. Empty: counted in each process's memory, so N uvicorn workers allow N times each limit.")
    trusted_origins: list[str] = Field(default_factory=list, description="Origins (scheme://host[:port]) accepted on state-changing requests besides the server's own, e.g. the public https address when a TLS proxy does not forward X-Forwarded-Proto.")
    llm_url: str = Field("", description="Base URL of an OpenAI-compatible endpoint for machine-drafted labels (empty: offline drafts only).")
    llm_model: str = Field("", description="Model name sent to the LLM endpoint.")
    llm_api_key: str = Field("", description="API key for the LLM endpoint (never shown in /-/settings.json).")

    @field_validator("steer_rate_limit", "write_rate_limit", "login_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            items = parse_many(value)
        except ValueError:
            items = []
        if not items or any(item.amount < 1 for item in items):
            raise ValueError(f"rate limit {value!r} is not N/second, N/minute, N/hour or N/day with N >= 1 "
                             "(several joined by ';', e.g. 10/minute;50/hour)")
        return value

    @field_validator("trusted_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin) or origin.count("/") != 2:
                raise ValueError(f"trusted origin {origin!r} is not scheme://host[:port] (no path, no slash at the end)")
        return [o.lower() for o in value]

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> "Settings":
        if self.demo:
            self.open_registration = True
            self.output_evidence = True
            self.autolabel = True
        reason = weak_secret_reason(self.secret_key) if self.secret_key else None
        if reason:
            raise ValueError(f"FEATUREBOARD_SECRET_KEY is refused: {reason}. Leave it empty to have a random key "
                             "generated, or set one made by e.g. `python -c 'import secrets; "
                             "print(secrets.token_urlsafe(48))'`")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'featureboard.db').resolve()}"

    def public_dict(self) -> dict:
        """Settings as JSON-safe values, secrets masked."""
        out = {}
        for name, value in self.model_dump(mode="json").items():
            if name in SECRET_FIELDS and value:
                value = "***"
            out[name] = value
        return out


def settings_table() -> list[tuple[str, str, str]]:
    """(env var, default, description) for each field: drives the CLI, /-/settings.json docs and the README."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, Path):
            default = str(default)
        rows.append((f"FEATUREBOARD_{name.upper()}", repr(default) if not isinstance(default, str) else (default or '""'), field.description or ""))
    return rows
