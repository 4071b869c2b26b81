"""Steering runs: the request, both outputs and the full result of each run, shared by link.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "steer_run",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("request_key", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(500), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("default_text", sa.Text(), nullable=True),
        sa.Column("steered_text", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("account_id", sa.Integer(), sa.ForeignKey("account.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'complete', 'failed')", name="status"),
        sa.CheckConstraint("method IN ('additive', 'clamp')", name="method"),
        sa.UniqueConstraint("request_key", name=op.f("uq_steer_run_request_key")),
    )
    op.create_index(op.f("ix_steer_run_created_at"), "steer_run", ["created_at"])
    op.create_index(op.f("ix_steer_run_account_id"), "steer_run", ["account_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_steer_run_account_id"), table_name="steer_run")
    op.drop_index(op.f("ix_steer_run_created_at"), table_name="steer_run")
    op.drop_table("steer_run")
