"""What a feature does (issue 18): calibrated steering strengths, one row per (source, feature, method) with the
sweep that found it; output evidence, one row per (source, feature): ablation effects and promoted tokens;
steering report cards, shared by link.

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
    op.create_table(
        "feature_output",
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("feature_index", sa.Integer(), primary_key=True),
        sa.Column("n_examples", sa.Integer(), nullable=False),
        sa.Column("n_positions", sa.Integer(), nullable=False),
        sa.Column("delta_loss", sa.Float(), nullable=False),
        sa.Column("kl", sa.Float(), nullable=False),
        sa.Column("output_score", sa.Float(), nullable=True),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.Column("promoted", sa.JSON(), nullable=False),
    )
    op.create_index("ix_feature_output_source_score", "feature_output", ["source_id", "output_score"])
    op.create_table(
        "steer_report",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("request_key", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(500), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_key", name=op.f("uq_steer_report_request_key")),
    )


def downgrade() -> None:
    op.drop_table("steer_report")
    op.drop_index("ix_feature_output_source_score", table_name="feature_output")
    op.drop_table("feature_output")
    op.drop_table("steer_calibration")
