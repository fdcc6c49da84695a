"""live pipeline: unordered case events, alarm events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:29:41.922126
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "alarm_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("alarm_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_events")),
    )
    with op.batch_alter_table("alarm_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarm_events_alarm_id"), ["alarm_id"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_event_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_event_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("event_count", sa.Integer(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_case_events_case_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_case_events_case_id_cases"), type_="foreignkey")
        batch_op.add_column(sa.Column("satisfaction", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("replay_note", sa.String(length=160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("event_count")
        batch_op.drop_column("last_event_id")
        batch_op.drop_column("last_event_at")

    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_column("replay_note")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("satisfaction")
        batch_op.create_foreign_key(
            batch_op.f("fk_case_events_case_id_cases"), "cases", ["case_id"], ["id"]
        )
        batch_op.create_unique_constraint(batch_op.f("uq_case_events_case_id"), ["case_id", "seq"])

    with op.batch_alter_table("alarm_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarm_events_alarm_id"))

    op.drop_table("alarm_events")
