"""Accounts, API keys, labels with revisions, votes, comments, feature lists, activity; label full-text search.

Full-text search is dialect specific: on SQLite an FTS5 table (external content over `label`) kept in sync by
triggers; on PostgreSQL a GIN index over to_tsvector('english', text || ' ' || description), queried with
plainto_tsquery. Neither is mirrored in app/models.py.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS_EXPR = "to_tsvector('english', text || ' ' || coalesce(description, ''))"

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE label_fts USING fts5(text, description, content='label', content_rowid='id')",
    """CREATE TRIGGER label_fts_insert AFTER INSERT ON label BEGIN
         INSERT INTO label_fts(rowid, text, description) VALUES (new.id, new.text, new.description);
       END""",
    """CREATE TRIGGER label_fts_delete AFTER DELETE ON label BEGIN
         INSERT INTO label_fts(label_fts, rowid, text, description) VALUES ('delete', old.id, old.text, old.description);
       END""",
    """CREATE TRIGGER label_fts_update AFTER UPDATE OF text, description ON label BEGIN
         INSERT INTO label_fts(label_fts, rowid, text, description) VALUES ('delete', old.id, old.text, old.description);
         INSERT INTO label_fts(rowid, text, description) VALUES (new.id, new.text, new.description);
       END""",
]


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _created_at(),
        sa.CheckConstraint("role IN ('admin', 'labeler', 'viewer')", name="role"),
        sa.UniqueConstraint("username", name=op.f("uq_account_username")),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _created_at(),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
    )
    op.create_index(op.f("ix_api_key_account_id"), "api_key", ["account_id"])
    op.create_table(
        "label",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("feature_index", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(100), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["source_id", "feature_index"], ["feature.source_id", "feature.index"],
                                ondelete="CASCADE", name="fk_label_feature"),
        sa.UniqueConstraint("uid", name=op.f("uq_label_uid")),
    )
    op.create_index("ix_label_canonical", "label", ["source_id", "feature_index", "score", "created_at"])
    op.create_index(op.f("ix_label_author_id"), "label", ["author_id"])
    op.create_table(
        "label_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label_id", sa.Integer(), sa.ForeignKey("label.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        _created_at(),
        sa.UniqueConstraint("label_id", "version", name="uq_label_revision_label_id_version"),
    )
    op.create_index(op.f("ix_label_revision_author_id"), "label_revision", ["author_id"])
    op.create_table(
        "vote",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label_id", sa.Integer(), sa.ForeignKey("label.id", ondelete="CASCADE"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("value IN (-1, 1)", name="value"),
        sa.UniqueConstraint("label_id", "account_id", name="uq_vote_label_id_account_id"),
    )
    op.create_index(op.f("ix_vote_account_id"), "vote", ["account_id"])
    op.create_table(
        "comment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("feature_index", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(["source_id", "feature_index"], ["feature.source_id", "feature.index"],
                                ondelete="CASCADE", name="fk_comment_feature"),
    )
    op.create_index("ix_comment_feature", "comment", ["source_id", "feature_index", "created_at"])
    op.create_index(op.f("ix_comment_author_id"), "comment", ["author_id"])
    op.create_table(
        "feature_list",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(32), nullable=False),
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        _created_at(),
        sa.UniqueConstraint("slug", name=op.f("uq_feature_list_slug")),
    )
    op.create_index(op.f("ix_feature_list_source_id"), "feature_list", ["source_id"])
    op.create_index(op.f("ix_feature_list_owner_id"), "feature_list", ["owner_id"])
    op.create_table(
        "feature_list_item",
        sa.Column("list_id", sa.Integer(), sa.ForeignKey("feature_list.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("feature_index", sa.Integer(), primary_key=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("feature_index", sa.Integer(), nullable=True),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(300), nullable=False),
        _created_at(),
    )
    op.create_index("ix_activity_source_id_id", "activity", ["source_id", "id"])
    op.create_index(op.f("ix_activity_account_id"), "activity", ["account_id"])

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX ix_label_fulltext ON label USING gin ({TS_EXPR})")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("label_fts_insert", "label_fts_delete", "label_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS label_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_label_fulltext")
    op.drop_index(op.f("ix_activity_account_id"), table_name="activity")
    op.drop_index("ix_activity_source_id_id", table_name="activity")
    op.drop_table("activity")
    op.drop_table("feature_list_item")
    op.drop_index(op.f("ix_feature_list_owner_id"), table_name="feature_list")
    op.drop_index(op.f("ix_feature_list_source_id"), table_name="feature_list")
    op.drop_table("feature_list")
    op.drop_index(op.f("ix_comment_author_id"), table_name="comment")
    op.drop_index("ix_comment_feature", table_name="comment")
    op.drop_table("comment")
    op.drop_index(op.f("ix_vote_account_id"), table_name="vote")
    op.drop_table("vote")
    op.drop_index(op.f("ix_label_revision_author_id"), table_name="label_revision")
    op.drop_table("label_revision")
    op.drop_index(op.f("ix_label_author_id"), table_name="label")
    op.drop_index("ix_label_canonical", table_name="label")
    op.drop_table("label")
    op.drop_index(op.f("ix_api_key_account_id"), table_name="api_key")
    op.drop_table("api_key")
    op.drop_table("account")
