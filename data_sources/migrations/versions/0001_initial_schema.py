"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 14:14:29.684190
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("name_zh", sa.String(length=128), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("area_km2", sa.Float(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("geometry", sa.Text(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["parent_id"], ["nodes.id"], name=op.f("fk_nodes_parent_id_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("code", name=op.f("uq_nodes_code")),
    )
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nodes_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_level"), ["level"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_nodes_street_id"), ["street_id"], unique=False)

    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["building_id"], ["nodes.id"], name=op.f("fk_cameras_building_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["nodes.id"], name=op.f("fk_cameras_community_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["nodes.id"], name=op.f("fk_cameras_district_id_nodes")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["nodes.id"], name=op.f("fk_cameras_grid_id_nodes")),
        sa.ForeignKeyConstraint(
            ["street_id"], ["nodes.id"], name=op.f("fk_cameras_street_id_nodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
        sa.UniqueConstraint("code", name=op.f("uq_cameras_code")),
    )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cameras_building_id"), ["building_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cameras_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cameras_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cameras_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cameras_street_id"), ["street_id"], unique=False)

    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["building_id"], ["nodes.id"], name=op.f("fk_workers_building_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["nodes.id"], name=op.f("fk_workers_community_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["nodes.id"], name=op.f("fk_workers_district_id_nodes")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["nodes.id"], name=op.f("fk_workers_grid_id_nodes")),
        sa.ForeignKeyConstraint(
            ["street_id"], ["nodes.id"], name=op.f("fk_workers_street_id_nodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
        sa.UniqueConstraint("code", name=op.f("uq_workers_code")),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workers_building_id"), ["building_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workers_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workers_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workers_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_workers_street_id"), ["street_id"], unique=False)

    op.create_table(
        "alarms",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("snapshot_url", sa.String(length=512), nullable=True),
        sa.Column("case_id", sa.String(length=64), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["building_id"], ["nodes.id"], name=op.f("fk_alarms_building_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_alarms_camera_id_cameras")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["nodes.id"], name=op.f("fk_alarms_community_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["nodes.id"], name=op.f("fk_alarms_district_id_nodes")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["nodes.id"], name=op.f("fk_alarms_grid_id_nodes")),
        sa.ForeignKeyConstraint(
            ["street_id"], ["nodes.id"], name=op.f("fk_alarms_street_id_nodes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarms_building_id"), ["building_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_camera_id"), ["camera_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index("ix_alarms_status_district", ["status", "district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alarms_street_id"), ["street_id"], unique=False)

    op.create_table(
        "cases",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("category", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("handling_seconds", sa.Integer(), nullable=True),
        sa.Column("deferred", sa.Boolean(), nullable=False),
        sa.Column("supervised", sa.Boolean(), nullable=False),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("satisfaction", sa.String(length=24), nullable=True),
        sa.Column("resolved_at", sa.String(length=16), nullable=True),
        sa.Column("worker_id", sa.Integer(), nullable=True),
        sa.Column("alarm_id", sa.String(length=64), nullable=True),
        sa.Column("district_id", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["building_id"], ["nodes.id"], name=op.f("fk_cases_building_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["nodes.id"], name=op.f("fk_cases_community_id_nodes")
        ),
        sa.ForeignKeyConstraint(
            ["district_id"], ["nodes.id"], name=op.f("fk_cases_district_id_nodes")
        ),
        sa.ForeignKeyConstraint(["grid_id"], ["nodes.id"], name=op.f("fk_cases_grid_id_nodes")),
        sa.ForeignKeyConstraint(["street_id"], ["nodes.id"], name=op.f("fk_cases_street_id_nodes")),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["workers.id"], name=op.f("fk_cases_worker_id_workers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_building_id"), ["building_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_district_id"), ["district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_grid_id"), ["grid_id"], unique=False)
        batch_op.create_index("ix_cases_reported_at", ["reported_at"], unique=False)
        batch_op.create_index("ix_cases_status_district", ["status", "district_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_street_id"), ["street_id"], unique=False)

    op.create_table(
        "positions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("speed", sa.Float(), nullable=True),
        sa.Column("bearing", sa.Float(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("battery", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["workers.id"], name=op.f("fk_positions_worker_id_workers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.UniqueConstraint("event_id", name=op.f("uq_positions_event_id")),
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index("ix_positions_worker_ts", ["worker_id", "ts"], unique=False)

    op.create_table(
        "case_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.String(length=512), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
        sa.UniqueConstraint("case_id", "seq", name=op.f("uq_case_events_case_id")),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_events_case_id"), ["case_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_events_case_id"))

    op.drop_table("case_events")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index("ix_positions_worker_ts")

    op.drop_table("positions")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_street_id"))
        batch_op.drop_index("ix_cases_status_district")
        batch_op.drop_index("ix_cases_reported_at")
        batch_op.drop_index(batch_op.f("ix_cases_grid_id"))
        batch_op.drop_index(batch_op.f("ix_cases_district_id"))
        batch_op.drop_index(batch_op.f("ix_cases_community_id"))
        batch_op.drop_index(batch_op.f("ix_cases_building_id"))

    op.drop_table("cases")
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alarms_street_id"))
        batch_op.drop_index("ix_alarms_status_district")
        batch_op.drop_index(batch_op.f("ix_alarms_grid_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_district_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_community_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_camera_id"))
        batch_op.drop_index(batch_op.f("ix_alarms_building_id"))

    op.drop_table("alarms")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workers_street_id"))
        batch_op.drop_index(batch_op.f("ix_workers_grid_id"))
        batch_op.drop_index(batch_op.f("ix_workers_district_id"))
        batch_op.drop_index(batch_op.f("ix_workers_community_id"))
        batch_op.drop_index(batch_op.f("ix_workers_building_id"))

    op.drop_table("workers")
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cameras_street_id"))
        batch_op.drop_index(batch_op.f("ix_cameras_grid_id"))
        batch_op.drop_index(batch_op.f("ix_cameras_district_id"))
        batch_op.drop_index(batch_op.f("ix_cameras_community_id"))
        batch_op.drop_index(batch_op.f("ix_cameras_building_id"))

    op.drop_table("cameras")
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nodes_street_id"))
        batch_op.drop_index(batch_op.f("ix_nodes_parent_id"))
        batch_op.drop_index(batch_op.f("ix_nodes_level"))
        batch_op.drop_index(batch_op.f("ix_nodes_grid_id"))
        batch_op.drop_index(batch_op.f("ix_nodes_district_id"))
        batch_op.drop_index(batch_op.f("ix_nodes_community_id"))

    op.drop_table("nodes")
