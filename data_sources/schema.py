"""SQL schema (the system of record), as SQLAlchemy 2 typed ORM.

Every fact (case, camera, alarm, worker) carries the ids of all its ancestors as plain indexed columns
(`district_id` … `building_id`), so the figures of any level come from one GROUP BY without joins.
Timestamps are naive UTC. Enum values are stored as short strings (portable across SQLite and
PostgreSQL; validated on the way in).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

IntPk = Annotated[int, mapped_column(Integer, primary_key=True, autoincrement=False)]
NodeRef = Annotated[int, mapped_column(ForeignKey("nodes.id"), index=True)]
OptNodeRef = Annotated[int | None, mapped_column(ForeignKey("nodes.id"), index=True)]
Ts = Annotated[datetime, mapped_column(DateTime)]
OptTs = Annotated[datetime | None, mapped_column(DateTime)]
Code = Annotated[str, mapped_column(String(32))]
Name = Annotated[str, mapped_column(String(128))]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AncestorsMixin:
    """Ancestor ids of a fact; the column of its own deepest level is its location."""

    district_id: Mapped[OptNodeRef]
    street_id: Mapped[OptNodeRef]
    community_id: Mapped[OptNodeRef]
    grid_id: Mapped[OptNodeRef]
    building_id: Mapped[OptNodeRef]


class NodeRow(Base):
    """A node of the hierarchy: city → district → street → community → grid → building."""

    __tablename__ = "nodes"

    id: Mapped[IntPk]
    code: Mapped[Code] = mapped_column(unique=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("nodes.id"), index=True)
    name_zh: Mapped[Name]
    name_en: Mapped[Name]
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    area_km2: Mapped[float] = mapped_column(Float)
    households: Mapped[int] = mapped_column(Integer, default=0)
    #: GeoJSON geometry (Polygon or MultiPolygon), GCJ-02 lon/lat as the demo data is.
    geometry: Mapped[str] = mapped_column(Text)
    district_id: Mapped[int | None] = mapped_column(Integer, index=True)
    street_id: Mapped[int | None] = mapped_column(Integer, index=True)
    community_id: Mapped[int | None] = mapped_column(Integer, index=True)
    grid_id: Mapped[int | None] = mapped_column(Integer, index=True)


class WorkerRow(AncestorsMixin, Base):
    """A grid worker, inspector, supervisor or volunteer, with the grid they look after."""

    __tablename__ = "workers"

    id: Mapped[IntPk]
    code: Mapped[Code] = mapped_column(unique=True)
    name: Mapped[Name]
    role: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str] = mapped_column(String(20))


class PositionRow(Base):
    """One GPS fix of a worker (history; the latest lives in live state)."""

    __tablename__ = "positions"
    __table_args__ = (Index("ix_positions_worker_ts", "worker_id", "ts"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"))
    ts: Mapped[Ts]
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    speed: Mapped[float | None] = mapped_column(Float)
    bearing: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    battery: Mapped[float | None] = mapped_column(Float)


class CameraRow(AncestorsMixin, Base):
    __tablename__ = "cameras"

    id: Mapped[IntPk]
    code: Mapped[Code] = mapped_column(unique=True)
    name: Mapped[Name]
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)


class CaseRow(AncestorsMixin, Base):
    """A citizen request or incident. Lifecycle columns are maintained from its case_events."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_district", "status", "district_id"),
        Index("ix_cases_reported_at", "reported_at"),
        # The case table's search: the trigrams of ids and titles (migration 0005 says why,
        # and what it costs). On PostgreSQL with pg_trgm; elsewhere an empty partial index that
        # only keeps the schema the same.
        Index(
            "ix_cases_search",
            "id",
            "title",
            postgresql_using="gin",
            postgresql_ops={"id": "gin_trgm_ops", "title": "gin_trgm_ops"},
            sqlite_where=text("0"),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(256))
    channel: Mapped[str] = mapped_column(String(24))
    category: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    reported_at: Mapped[Ts]
    accepted_at: Mapped[OptTs]
    dispatched_at: Mapped[OptTs]
    handled_at: Mapped[OptTs]
    closed_at: Mapped[OptTs]
    due_at: Mapped[OptTs]
    #: Seconds from report to close, set on close (portable; avoids dialect date arithmetic).
    handling_seconds: Mapped[int | None] = mapped_column(Integer)
    deferred: Mapped[bool] = mapped_column(Boolean, default=False)
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction: Mapped[str | None] = mapped_column(String(24))
    resolved_at: Mapped[str | None] = mapped_column(String(16))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    alarm_id: Mapped[str | None] = mapped_column(String(64))
    #: The last of its events in timeline order, and their number: a new event that comes after
    #: it continues the stored state instead of replaying every stored event.
    last_event_at: Mapped[OptTs]
    last_event_id: Mapped[str | None] = mapped_column(String(64))
    event_count: Mapped[int] = mapped_column(Integer, default=0)


class CaseEventRow(Base):
    """One step of a case's lifecycle, with who did it and when; `id` is the event id.

    No foreign key to `cases`: a transition may arrive before its case's report (feeds are not
    ordered); the case row is recomputed from all its events sorted by (at, id) whenever one arrives.
    A transition that is not allowed where it falls in that order keeps `to_status == from_status`
    and says why in `replay_note` (`note` is always the source's own).
    """

    __tablename__ = "case_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), index=True)
    #: Position in the case's timeline, (at, id) order.
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[Ts]
    note: Mapped[str | None] = mapped_column(String(512))
    #: Why the replay ignored this step ("ignored: …", "waiting for the case's report"), else None.
    replay_note: Mapped[str | None] = mapped_column(String(160))
    #: The evaluation of an `evaluate` step and the level of a `close` step.
    satisfaction: Mapped[str | None] = mapped_column(String(24))
    resolved_at: Mapped[str | None] = mapped_column(String(16))


class AlarmRow(AncestorsMixin, Base):
    """A camera alarm: active → acknowledged → resolved | false_alarm."""

    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_status_district", "status", "district_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), index=True)
    type: Mapped[str] = mapped_column(String(24))
    severity: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[Ts]
    acknowledged_at: Mapped[OptTs]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[OptTs]
    snapshot_url: Mapped[str | None] = mapped_column(String(512))
    case_id: Mapped[str | None] = mapped_column(String(64))


class AlarmEventRow(Base):
    """One step of an alarm (raised, updated, acknowledged, resolved); `id` is the event id."""

    __tablename__ = "alarm_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alarm_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[Ts]
    #: The event's payload as JSON (what the alarm row is recomputed from).
    body: Mapped[str] = mapped_column(Text)


#: Auto-numbered 64-bit key (SQLite only auto-numbers an INTEGER PRIMARY KEY).
AutoPk = Annotated[
    int,
    mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
]


class BusEntryRow(Base):
    """The SQL bus's log (the embedded default's outbox): an event is here, committed, before its
    202; the projector reads it from here. See `data_sources/bus/sql.py`."""

    __tablename__ = "bus_entries"
    #: A seq is never used twice, even after the newest entries are deleted: a reader's
    #: `last_delivered` would otherwise skip new entries numbered below it.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[AutoPk]
    #: The event's id, so that a re-send after a crash is recognised before it is projected.
    event_id: Mapped[str | None] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    published_at: Mapped[Ts]


class BusGroupRow(Base):
    """A consumer group of the SQL bus and the last entry delivered to it."""

    __tablename__ = "bus_groups"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_delivered: Mapped[int] = mapped_column(BigInteger, default=0)


class BusPendingRow(Base):
    """An entry delivered to a group and not yet acknowledged (Redis's pending entries list)."""

    __tablename__ = "bus_pending"

    #: Not "group": a reserved word in SQL, which every hand-written query would have to quote.
    consumer_group: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    consumer: Mapped[str] = mapped_column(String(128))
    delivered_at: Mapped[Ts]
    deliveries: Mapped[int] = mapped_column(Integer, default=1)


class DeadLetterRow(Base):
    """An event the projector could not apply after its attempts, with the error; it no longer
    blocks the events around it and can be retried after a fix (`gridcc dead-letters`)."""

    __tablename__ = "dead_letters"

    id: Mapped[AutoPk]
    #: The event's id and kind when the entry decodes (an undecodable entry has neither).
    event_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str | None] = mapped_column(String(24))
    #: Where it was on the bus, and the entry itself as published.
    position: Mapped[str] = mapped_column(String(48))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    failed_at: Mapped[Ts]


# ---------------------------------------------------------------- access (data_sources/access)


class UserRow(Base):
    """An account that signs in on the login page: a role and the node it may see."""

    __tablename__ = "users"

    id: Mapped[AutoPk]
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    scope_code: Mapped[Code]
    #: argon2id, as `argon2.PasswordHasher` encodes it (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[Ts]
    disabled_at: Mapped[OptTs]
    #: Failed sign-ins in a row, and until when the account is locked after too many.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[OptTs]


class UserSessionRow(Base):
    """A signed-in browser: the cookie holds a random token, this row only its SHA-256."""

    __tablename__ = "user_sessions"

    id: Mapped[AutoPk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[Ts]
    last_seen_at: Mapped[Ts]
    #: The absolute end, whatever the activity; `ended_at` is set by logout or disabling.
    expires_at: Mapped[Ts]
    ended_at: Mapped[OptTs]
    client: Mapped[str | None] = mapped_column(String(64))


class DisplayRow(Base):
    """A wall PC enrolled with a device token (stored as its SHA-256), bound to a scope."""

    __tablename__ = "displays"

    id: Mapped[AutoPk]
    name: Mapped[str] = mapped_column(String(64), unique=True)
    scope_code: Mapped[Code]
    operator: Mapped[bool] = mapped_column(Boolean, default=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[Ts]
    revoked_at: Mapped[OptTs]


class ApiKeyRow(Base):
    """An API key (stored as its SHA-256): an ingest source's, or an admin's for the admin APIs."""

    __tablename__ = "api_keys"

    id: Mapped[AutoPk]
    source: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[Ts]
    created_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[OptTs]


class AuditRow(Base):
    """One line of the audit log: who did what, where, when, from which address, and how it
    ended. Append-only: the migration adds triggers that refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"

    id: Mapped[AutoPk]
    at: Mapped[Ts] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(48), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    scope_code: Mapped[str | None] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(String(64))


# ---------------------------------------------------------------- embeds (data_sources/embed)


class EmbedGrantRow(Base):
    """A portal's right to embed panels of an area (嵌入授权): the tokens it is issued carry its id,
    and revoking it refuses them all at their next request."""

    __tablename__ = "embed_grants"

    id: Mapped[AutoPk]
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: The node whose area (itself and everything under it) its tokens may show.
    scope_code: Mapped[Code]
    #: The panels its tokens may show, comma-separated in `embed.panels.PANELS` order ("kpis,map").
    panels: Mapped[str] = mapped_column(String(128))
    #: The origins that may frame its embeds, space-separated; empty: the deployment's.
    origins: Mapped[str] = mapped_column(Text)
    #: The longest token it may be issued, in seconds.
    max_ttl_s: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[Ts]
    revoked_at: Mapped[OptTs]


class AppSecretRow(Base):
    """A secret the deployment made for itself once and every process shares (the embed tokens'
    signing key when GRIDCC_EMBED_SECRET is unset)."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[Ts]
