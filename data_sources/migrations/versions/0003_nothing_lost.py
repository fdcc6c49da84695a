"""nothing lost or stuck: counters sized for real volumes, SQL bus (outbox), dead letters

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AUTO_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: Counters a busy case outgrows as SMALLINT (PostgreSQL refused its 32,768th event). 0001 and
#: 0002 now create them as INTEGER; this widens them in databases made before. Not on SQLite:
#: its integers are 64-bit whatever the declared type, and rebuilding `cases` there (the only
#: way it alters a column) recreated its indexes in an order that differs from run to run, so
#: two seeds of the same city were no longer identical files.
WIDENED = [("cases", "rework_count"), ("cases", "event_count"), ("case_events", "seq")]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table, column in WIDENED:
            op.alter_column(
                table,
                column,
                type_=sa.Integer(),
                existing_type=sa.SmallInteger(),
                existing_nullable=False,
            )

    op.create_table(
        "bus_entries",
        sa.Column("seq", AUTO_PK, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_bus_entries")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_bus_entries_event_id"), "bus_entries", ["event_id"])
    op.create_table(
        "bus_groups",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_delivered", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_bus_groups")),
    )
    op.create_table(
        "bus_pending",
        sa.Column("consumer_group", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("consumer", sa.String(length=128), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "seq", name=op.f("pk_bus_pending")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", AUTO_PK, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=True),
        sa.Column("position", sa.String(length=48), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(op.f("ix_dead_letters_event_id"), "dead_letters", ["event_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_dead_letters_event_id"), table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("bus_pending")
    op.drop_table("bus_groups")
    op.drop_index(op.f("ix_bus_entries_event_id"), table_name="bus_entries")
    op.drop_table("bus_entries")
    # The counters stay INTEGER: narrowing fails on a case that needed them, and the code of 0002
    # works with either.
