"""Page versions (issue 15): one counter per (source, feature) and one per source (feature_index -1), bumped by
triggers in the same transaction as every write a feature page shows (labels, votes, label scores, comments,
list items, output evidence; lists and the source row itself bump the source's counter). Every worker reads the
counters to key its page cache and ETags, so a write through any process, the CLI included, invalidates
exactly the pages it changes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SOURCE_LEVEL = -1

# (trigger name, table, events, SELECT of the (source_id, feature_index) pairs the row touches; ROW is NEW or OLD)
BUMPS = [
    ("label", "label", "SELECT ROW.source_id, ROW.feature_index"),
    ("vote", "vote", "SELECT l.source_id, l.feature_index FROM label l WHERE l.id = ROW.label_id"),
    ("label_score", "label_score", "SELECT l.source_id, l.feature_index FROM label l WHERE l.id = ROW.label_id"),
    ("comment", "comment", "SELECT ROW.source_id, ROW.feature_index"),
    ("list_item", "feature_list_item",
     "SELECT f.source_id, ROW.feature_index FROM feature_list f WHERE f.id = ROW.list_id"),
    ("feature_list", "feature_list", f"SELECT ROW.source_id, {SOURCE_LEVEL}"),
    ("feature_output", "feature_output", "SELECT ROW.source_id, ROW.feature_index"),
    ("source", "source", f"SELECT ROW.id, {SOURCE_LEVEL}"),
]
EVENTS = {"label": "INSERT UPDATE DELETE", "source": "UPDATE"}


def bump_sql(select: str, row: str) -> str:
    """The upsert that bumps the counters of the pairs ``select`` yields for the trigger's ``row`` (NEW or OLD)."""
    columns, _, rest = select.replace("ROW.", f"{row}.").partition(" FROM ")
    # "WHERE true": SQLite's parser needs a WHERE before ON CONFLICT in an INSERT ... SELECT.
    source = f" FROM {rest} AND true" if rest else " WHERE true"
    return (f"INSERT INTO page_version (source_id, feature_index, version) {columns}, 1{source} "
            "ON CONFLICT (source_id, feature_index) DO UPDATE SET version = page_version.version + 1")


def _events(name: str) -> list[str]:
    return EVENTS.get(name, "INSERT UPDATE DELETE").split()


def upgrade() -> None:
    op.create_table(
        "page_version",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("feature_index", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "feature_index", name=op.f("pk_page_version")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, select in BUMPS:
        for event in _events(name):
            row = "OLD" if event == "DELETE" else "NEW"
            trigger = f"page_version_{name}_{event.lower()}"
            sql = bump_sql(select, row)
            if postgres:
                op.execute(f"CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                           f"BEGIN {sql}; RETURN NULL; END $$")
                op.execute(f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW "
                           f"EXECUTE FUNCTION {trigger}()")
            else:
                op.execute(f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW BEGIN {sql}; END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, _ in BUMPS:
        for event in _events(name):
            trigger = f"page_version_{name}_{event.lower()}"
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}" if postgres else f"DROP TRIGGER IF EXISTS {trigger}")
            if postgres:
                op.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
    op.drop_table("page_version")
