"""The labeling loop (issue 13): a draft's own score on the label row, so that among unvoted drafts the
best-scoring one is canonical with one index seek; a bootstrap interval beside every label score; features
assigned to people.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("label") as batch:
        batch.add_column(sa.Column("draft_score", sa.Float(), nullable=True))
    with op.batch_alter_table("label_score") as batch:
        batch.add_column(sa.Column("ci_low", sa.Float(), nullable=True))
        batch.add_column(sa.Column("ci_high", sa.Float(), nullable=True))
    op.create_table(
        "assignment",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("feature_index", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
        sa.Column("assigned_by", sa.Integer(), sa.ForeignKey("account.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "feature_index", "account_id", name=op.f("pk_assignment")),
        sa.ForeignKeyConstraint(["source_id", "feature_index"], ["feature.source_id", "feature.index"],
                                ondelete="CASCADE", name="fk_assignment_feature"),
    )
    op.create_index("ix_assignment_account", "assignment", ["account_id", "source_id", "feature_index"])


def downgrade() -> None:
    op.drop_index("ix_assignment_account", table_name="assignment")
    op.drop_table("assignment")
    with op.batch_alter_table("label_score") as batch:
        batch.drop_column("ci_high")
        batch.drop_column("ci_low")
    with op.batch_alter_table("label") as batch:
        batch.drop_column("draft_score")
