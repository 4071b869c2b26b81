"""SQLAlchemy 2 tables. Names follow the field: d_in, d_sae, hook_name, density, L0.

Migrations in migrations/ are the source of truth for the schema; a test checks that these models
and the migrated database agree.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Source(Base):
    """One SAE on one model at one hook, with the corpus it was precomputed on."""

    __tablename__ = "source"
    __table_args__ = (CheckConstraint("status IN ('running', 'complete')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    model_name: Mapped[str] = mapped_column(String(500))
    sae_path: Mapped[str] = mapped_column(String(1000))
    hook_name: Mapped[str] = mapped_column(String(200))
    architecture: Mapped[str] = mapped_column(String(50))
    d_in: Mapped[int] = mapped_column(Integer)
    d_sae: Mapped[int] = mapped_column(Integer)
    cfg: Mapped[dict] = mapped_column(JSON, default=dict)
    corpus: Mapped[dict] = mapped_column(JSON, default=dict)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    health: Mapped[dict] = mapped_column(JSON, default=dict)
    n_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    n_contexts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="running")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Feature(Base):
    """Per-feature statistics. Plots and token lists are small JSON values read in one row."""

    __tablename__ = "feature"
    __table_args__ = (
        Index("ix_feature_source_density", "source_id", "density"),
        Index("ix_feature_source_max_act", "source_id", "max_act"),
    )

    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    n_active: Mapped[int] = mapped_column(BigInteger, default=0)
    density: Mapped[float] = mapped_column(Float, default=0.0)
    max_act: Mapped[float] = mapped_column(Float, default=0.0)
    mean_act: Mapped[float] = mapped_column(Float, default=0.0)
    # {"edges": [51 floats], "counts": [50 ints]} over nonzero activations
    act_hist: Mapped[dict] = mapped_column(JSON, default=dict)
    # [{"lo", "hi", "share", "count"}] for the interval groups, equal width from 0 to max_act
    intervals: Mapped[list] = mapped_column(JSON, default=list)
    # [{"token_id", "token", "value"}] top and bottom logit effects of W_dec[i] through the unembedding
    top_logits: Mapped[list] = mapped_column(JSON, default=list)
    bottom_logits: Mapped[list] = mapped_column(JSON, default=list)
    logit_hist: Mapped[dict] = mapped_column(JSON, default=dict)
    # [{"index", "cosine"}] nearest features by decoder cosine
    neighbours: Mapped[list] = mapped_column(JSON, default=list)


class Context(Base):
    """One corpus context kept for examples: its token ids (int32 little-endian), stored once."""

    __tablename__ = "context"
    __table_args__ = (UniqueConstraint("corpus_key", "ordinal", name="uq_context_corpus_key_ordinal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    corpus_key: Mapped[str] = mapped_column(String(64), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    token_ids: Mapped[bytes] = mapped_column(LargeBinary)


class Example(Base):
    """A max-activating (kind 'top') or interval (kind 'interval', with bin) example of a feature."""

    __tablename__ = "example"
    __table_args__ = (
        CheckConstraint("kind IN ('top', 'interval')", name="kind"),
        ForeignKeyConstraint(["source_id", "feature_index"], ["feature.source_id", "feature.index"], ondelete="CASCADE",
                             name="fk_example_feature"),
        Index("ix_example_feature", "source_id", "feature_index", "kind", "bin", "rank"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer)
    feature_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    bin: Mapped[int] = mapped_column(Integer, default=-1)
    rank: Mapped[int] = mapped_column(Integer)
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"), index=True)
    max_value: Mapped[float] = mapped_column(Float)
    max_pos: Mapped[int] = mapped_column(Integer)
    # float16 little-endian activations over the context's tokens
    acts: Mapped[bytes] = mapped_column(LargeBinary)


# --- Collaborative labeling (issue 7): accounts, API keys, labels with revisions, votes, comments,
# --- feature lists and the activity feed. Full-text search (FTS5 / tsvector) lives in migration 0002 only.

ROLES = ("admin", "labeler", "viewer")


class Account(Base):
    """A person (or an imported author without a password, who cannot log in)."""

    __tablename__ = "account"
    __table_args__ = (CheckConstraint("role IN ('admin', 'labeler', 'viewer')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # "scrypt$n$r$p$salt$hash" (base64); NULL means the account cannot log in with a password
    password_hash: Mapped[str | None] = mapped_column(String(300), nullable=True)
    role: Mapped[str] = mapped_column(String(20), default="labeler")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """A bearer token for scripts. Only the SHA-256 of the token is stored; `prefix` identifies it to people."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Written at most once a minute per key (see app/store/accounts.py), not on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginSession(Base):
    """One browser login. The cookie holds a random token (signed); only its SHA-256 is stored, so a copy of the
    database cannot be replayed as cookies. Logout deletes the row, which ends that cookie for good."""

    __tablename__ = "login_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Written at most once a minute per session, like ApiKey.last_used_at.
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(200), default="")


class AuditEvent(Base):
    """One admin action (role change, deletion of another's content, import, ending another's sessions).
    ``actor_id`` NULL means the console (`featureboard` commands); ``detail`` holds the values involved."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), index=True,
                                                 nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    target_account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"),
                                                          index=True, nullable=True)
    summary: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Label(Base):
    """One label of one feature. `version` grows by one per accepted edit (optimistic concurrency);
    `score` is the sum of its votes, kept in step by the vote writes."""

    __tablename__ = "label"
    __table_args__ = (
        ForeignKeyConstraint(["source_id", "feature_index"], ["feature.source_id", "feature.index"], ondelete="CASCADE",
                             name="fk_label_feature"),
        Index("ix_label_canonical", "source_id", "feature_index", "score", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    source_id: Mapped[int] = mapped_column(Integer)
    feature_index: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    method: Mapped[str] = mapped_column(String(100), default="human")
    author_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    score: Mapped[int] = mapped_column(Integer, default=0)
    # A machine draft's newest ok score of the source's ranking method for its current version (NULL for people's
    # labels, unscored drafts and after an edit): among unvoted drafts the best-scoring one is canonical.
    draft_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LabelRevision(Base):
    """The full content of a label at one version, and who wrote it."""

    __tablename__ = "label_revision"
    __table_args__ = (UniqueConstraint("label_id", "version", name="uq_label_revision_label_id_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    author_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Vote(Base):
    __tablename__ = "vote"
    __table_args__ = (
        CheckConstraint("value IN (-1, 1)", name="value"),
        UniqueConstraint("label_id", "account_id", name="uq_vote_label_id_account_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    value: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Comment(Base):
    __tablename__ = "comment"
    __table_args__ = (
        ForeignKeyConstraint(["source_id", "feature_index"], ["feature.source_id", "feature.index"], ondelete="CASCADE",
                             name="fk_comment_feature"),
        Index("ix_comment_feature", "source_id", "feature_index", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer)
    feature_index: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeatureList(Base):
    """A named list of features of one source, with notes; anyone with the slug's link can read it."""

    __tablename__ = "feature_list"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeatureListItem(Base):
    __tablename__ = "feature_list_item"

    list_id: Mapped[int] = mapped_column(ForeignKey("feature_list.id", ondelete="CASCADE"), primary_key=True)
    feature_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    note: Mapped[str] = mapped_column(Text, default="")
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Assignment(Base):
    """A feature of a source given to a person to label (the labeling flow can run over one's assignments)."""

    __tablename__ = "assignment"
    __table_args__ = (
        ForeignKeyConstraint(["source_id", "feature_index"], ["feature.source_id", "feature.index"], ondelete="CASCADE",
                             name="fk_assignment_feature"),
        Index("ix_assignment_account", "account_id", "source_id", "feature_index"),
    )

    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    assigned_by: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Activity(Base):
    """One attributable write (label created/edited/deleted, vote, comment, list change), for the per-source feed."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_source_id_id", "source_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    feature_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    label_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    summary: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SteerRun(Base):
    """One steering run (issue 6): the request, both outputs and the full result, shared as /steer/{id}.

    `request_key` is the SHA-256 of the canonical request on this model, so an identical request returns
    this row without model work. `result` holds per-row tokens with top-5 alternatives, the control and
    the sweep; it stays NULL while the run is pending.
    """

    __tablename__ = "steer_run"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'complete', 'failed')", name="status"),
        CheckConstraint("method IN ('additive', 'clamp')", name="method"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    request_key: Mapped[str] = mapped_column(String(64), unique=True)
    model_name: Mapped[str] = mapped_column(String(500))
    prompt: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(20))
    # [{"source", "feature", "strength"}]
    features: Mapped[list] = mapped_column(JSON, default=list)
    # {"n_tokens", "temperature", "top_p", "control", "sweep"}
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    default_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    steered_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), index=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LabelScore(Base):
    """One score of one label version by one method (issue 8): embedding | detection | fuzzing.

    `inputs` names the held-out examples used ({"activating": [...], "non_activating": [...]}, example or context
    ids with token windows); `details` has one entry per example (similarity, or prediction vs truth). A provider
    error or a malformed reply is stored with status 'failed', the reason in `error` and no score.
    """

    __tablename__ = "label_score"
    __table_args__ = (
        CheckConstraint("status IN ('ok', 'failed')", name="status"),
        CheckConstraint("(status = 'ok' AND score IS NOT NULL) OR (status = 'failed' AND score IS NULL)",
                        name="score_when_ok"),
        Index("ix_label_score_label_method", "label_id", "method", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"))
    label_version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(10), default="ok")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    # 95 % bootstrap interval of the score over its held-out windows (NULL for scores stored before issue 13)
    ci_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    ci_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    inputs: Mapped[dict] = mapped_column(JSON, default=dict)
    details: Mapped[list] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SteerCalibration(Base):
    """The calibrated default strength of one feature (issue 18): the strongest strength of a quick sweep on the
    neutral prompts whose text stays within ``budget ×`` the unsteered perplexity; NULL when none did. ``result``
    is the whole sweep (app/ml/calibration.py)."""

    __tablename__ = "steer_calibration"
    __table_args__ = (CheckConstraint("method IN ('additive', 'clamp')", name="method"),)

    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    feature_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    method: Mapped[str] = mapped_column(String(20), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(500))
    budget: Mapped[float] = mapped_column(Float)
    strength: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeatureOutput(Base):
    """Output evidence of one feature (issue 18; app/precompute/output.py): the effect of ablating it on its top
    examples (mean rise in next-token loss and mean KL, nats, over the positions where it fires) and the tokens
    whose probability rises most when it is added at ``strength`` on the neutral prompts
    (``[{"token_id", "token", "delta_prob", "prob_clean", "prob_steered"}]``). ``output_score`` is the ablation KL
    (NULL when the feature fired on none of the examples), what the source page sorts and filters on."""

    __tablename__ = "feature_output"
    __table_args__ = (Index("ix_feature_output_source_score", "source_id", "output_score"),)

    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), primary_key=True)
    feature_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    n_examples: Mapped[int] = mapped_column(Integer)
    n_positions: Mapped[int] = mapped_column(Integer)
    delta_loss: Mapped[float] = mapped_column(Float)
    kl: Mapped[float] = mapped_column(Float)
    output_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    strength: Mapped[float] = mapped_column(Float)
    promoted: Mapped[list] = mapped_column(JSON, default=list)


class SteerReport(Base):
    """A steering report card (issue 18; app/ml/report_card.py), shared as /steer/report/{id}. ``request_key`` is
    the SHA-256 of the canonical request on this model, so an identical request finds this row."""

    __tablename__ = "steer_report"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    request_key: Mapped[str] = mapped_column(String(64), unique=True)
    model_name: Mapped[str] = mapped_column(String(500))
    request: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PageVersion(Base):
    """A counter per (source, feature) and per source (``feature_index`` -1), bumped by database triggers
    (migration 0011) on every write a feature page shows; page caches and ETags are keyed by it."""

    __tablename__ = "page_version"

    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feature_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


from app.store import models_compare  # noqa: E402, F401 - registers issue 17's tables on Base
