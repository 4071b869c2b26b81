"""Sources, features, contexts and examples.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("model_name", sa.String(500), nullable=False),
        sa.Column("sae_path", sa.String(1000), nullable=False),
        sa.Column("hook_name", sa.String(200), nullable=False),
        sa.Column("architecture", sa.String(50), nullable=False),
        sa.Column("d_in", sa.Integer(), nullable=False),
        sa.Column("d_sae", sa.Integer(), nullable=False),
        sa.Column("cfg", sa.JSON(), nullable=False),
        sa.Column("corpus", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("health", sa.JSON(), nullable=False),
        sa.Column("n_tokens", sa.BigInteger(), nullable=False),
        sa.Column("n_contexts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('running', 'complete')", name="status"),
        sa.UniqueConstraint("name", name=op.f("uq_source_name")),
    )
    op.create_table(
        "feature",
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("index", sa.Integer(), primary_key=True),
        sa.Column("n_active", sa.BigInteger(), nullable=False),
        sa.Column("density", sa.Float(), nullable=False),
        sa.Column("max_act", sa.Float(), nullable=False),
        sa.Column("mean_act", sa.Float(), nullable=False),
        sa.Column("act_hist", sa.JSON(), nullable=False),
        sa.Column("intervals", sa.JSON(), nullable=False),
        sa.Column("top_logits", sa.JSON(), nullable=False),
        sa.Column("bottom_logits", sa.JSON(), nullable=False),
        sa.Column("logit_hist", sa.JSON(), nullable=False),
        sa.Column("neighbours", sa.JSON(), nullable=False),
    )
    op.create_index("ix_feature_source_density", "feature", ["source_id", "density"])
    op.create_index("ix_feature_source_max_act", "feature", ["source_id", "max_act"])
    op.create_table(
        "context",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("corpus_key", sa.String(64), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("token_ids", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("corpus_key", "ordinal", name="uq_context_corpus_key_ordinal"),
    )
    op.create_index(op.f("ix_context_corpus_key"), "context", ["corpus_key"])
    op.create_table(
        "example",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("feature_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("bin", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.Integer(), sa.ForeignKey("context.id", ondelete="CASCADE"), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.Column("max_pos", sa.Integer(), nullable=False),
        sa.Column("acts", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("kind IN ('top', 'interval')", name="kind"),
        sa.ForeignKeyConstraint(["source_id", "feature_index"], ["feature.source_id", "feature.index"],
                                ondelete="CASCADE", name="fk_example_feature"),
    )
    op.create_index("ix_example_feature", "example", ["source_id", "feature_index", "kind", "bin", "rank"])
    op.create_index(op.f("ix_example_context_id"), "example", ["context_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_example_context_id"), table_name="example")
    op.drop_index("ix_example_feature", table_name="example")
    op.drop_table("example")
    op.drop_index(op.f("ix_context_corpus_key"), table_name="context")
    op.drop_table("context")
    op.drop_index("ix_feature_source_max_act", table_name="feature")
    op.drop_index("ix_feature_source_density", table_name="feature")
    op.drop_table("feature")
    op.drop_table("source")
