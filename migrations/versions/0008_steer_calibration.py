"""Calibrated steering strengths (issue 18): one row per (source, feature, method), the sweep that found it.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "steer_calibration",
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("feature_index", sa.Integer(), primary_key=True),
        sa.Column("method", sa.String(20), primary_key=True),
        sa.Column("model_name", sa.String(500), nullable=False),
        sa.Column("budget", sa.Float(), nullable=False),
        sa.Column("strength", sa.Float(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("method IN ('additive', 'clamp')", name="method"),
    )


def downgrade() -> None:
    op.drop_table("steer_calibration")
