"""case table indexes: trigram search of case numbers and titles (PostgreSQL)

The leaders' case table (issue 11) searches case numbers (from their start) and titles (anywhere
in them) within the filter's window. `ix_cases_search` is a GIN index of the trigrams (pg_trgm)
of the id and the title, which `ILIKE` uses for a text of three characters or more, so a search
no longer reads every case of its window. Measured with bench/bench_case_table.py on 1,000,000
cases (PostgreSQL 15, 2 CPUs, a shared machine), the city over a year: a case number from six
months ago 539 → 65 ms, the start of a case number 284 → 102 ms, a community's name (with the
place lists of `cases.sql.search_condition`) 872 → 53 ms. It costs every change of a case:
10,000 status updates took 830 ms without it and 1,440 ms with it (a city's real load is ≈ 1 %
case steps; the simulator's stress mix, 80 %). Two-character words (most Chinese words) have no
trigram to look up and still read the window, which the window keeps bounded (55–75 ms).

pg_trgm is a trusted extension since PostgreSQL 13 (the database's owner may create it). Where
it cannot be installed, and on SQLite, the index is an empty partial index of the same name
(`WHERE false`), so that the schema is the same everywhere and search falls back to reading
the window.

Measured and left out (each is one more write for every change of a case):
- (district_id, reported_at, id): a district's 30-day count 27 → 1.3 ms, its year's 119 → 8 ms,
  pages unchanged (≈ 8 ms); it cost more writes than the search index's savings justify here.
- (due_at, id) and (status, id): a year sorted in 8 ms instead of 150–650 ms, but PostgreSQL
  then read the index from a year back to fill a 30-day page (due times and ids follow report
  times): 48 → 300 ms for the default view. Every key sorts a 30-day window in under 50 ms.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 10:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SEARCH = "ix_cases_search"


def _trigrams(bind: Connection) -> bool:
    """Whether pg_trgm is installed, or could be installed now."""
    if bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first():
        return True
    available = bind.exec_driver_sql(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    ).first()
    if not available:
        return False
    try:
        with bind.begin_nested():  # a refusal must not abort the migration's transaction
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _trigrams(bind):
        op.create_index(
            SEARCH,
            "cases",
            ["id", "title"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"id": "gin_trgm_ops", "title": "gin_trgm_ops"},
        )
    else:
        op.create_index(
            SEARCH,
            "cases",
            ["id", "title"],
            unique=False,
            sqlite_where=sa.text("0"),
            postgresql_where=sa.text("false"),
        )


def downgrade() -> None:
    # pg_trgm stays: other objects may use it, and dropping an extension is its owner's call.
    op.drop_index(SEARCH, table_name="cases")
