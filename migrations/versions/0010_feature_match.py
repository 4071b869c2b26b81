"""Compare SAEs (issue 17): each feature's best matches in the other sources of its run (activation correlation,
decoder cosine), its most frequent co-active features, and each source's 2-D feature map.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_match",
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("feature_index", sa.Integer(), primary_key=True),
        sa.Column("other_source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("other_index", sa.Integer(), primary_key=True),
        sa.Column("corr", sa.Float(), nullable=True),
        sa.Column("cos", sa.Float(), nullable=True),
    )
    op.create_index("ix_feature_match_pair", "feature_match", ["source_id", "other_source_id", "feature_index"])
    op.create_table(
        "feature_coactivation",
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("feature_index", sa.Integer(), primary_key=True),
        sa.Column("other_index", sa.Integer(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "source_map",
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("source.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("xy", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_map")
    op.drop_table("feature_coactivation")
    op.drop_index("ix_feature_match_pair", table_name="feature_match")
    op.drop_table("feature_match")
