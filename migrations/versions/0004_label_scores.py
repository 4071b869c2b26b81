"""Label scores (issue 8): one row per (label version, method) scoring run, failures included.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_score",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label_id", sa.Integer(), sa.ForeignKey("label.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label_version", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(50), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('ok', 'failed')", name="status"),
        sa.CheckConstraint("(status = 'ok' AND score IS NOT NULL) OR (status = 'failed' AND score IS NULL)",
                           name="score_when_ok"),
    )
    op.create_index("ix_label_score_label_method", "label_score", ["label_id", "method", "id"])


def downgrade() -> None:
    op.drop_index("ix_label_score_label_method", table_name="label_score")
    op.drop_table("label_score")
