"""Server memory while exporting up to 1,000,000 cases as CSV and XLSX (issue 11, acceptance 3:
"streams: server memory stays flat exporting 1 M rows").

Runs `uvicorn app:create_app --factory` on gen_cases.py's PostgreSQL database (a year of 1 M
cases ending at AS_OF, built on first use and kept) and, with an admin API key made for the run
(and revoked after it: exports need a signed-in user or an admin key), exports the city's cases
reported in the last N days of that year, N growing until the whole year (~100 k … 1 M rows),
once in each format. An XLSX holds at most `XLSX_MAX_ROWS` (200,000) rows: a window with more
(days 74 and up) is only checked to be refused (413), not measured; 73 days are 199,029 rows.
Before each export the server's peak RSS is reset
(`/proc/<pid>/clear_refs` ← 5); after it, VmHWM − VmRSS-before is the export's peak growth. The
client reads every byte and keeps none of it. Printed per export: rows (from its audit line),
bytes, time to the first byte, total time, rows/s, peak RSS growth and that growth per 100 k
rows. A file built whole in memory would grow ~linearly with the rows; a streamed one stays flat.

Exits 1 when the 1 M-row export's peak growth exceeds the smallest export's by more than
`--slack-mib` (default 32), or an export's row count is not what SQL counts.

    python bench/bench_export.py [--formats csv,xlsx] [--days 37,73,183,365] [--slack-mib 32]
        (CI: --formats csv --days 37,365 and --formats xlsx --days 37,73)
        (GRIDCC_BENCH_DATABASE_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/gridcc_bench_1m)
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from gen_cases import AS_OF, TZ, database_url, ensure_cases, say
from latency_rig import serve
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources.access.keys import add_key, key_info, revoke_key
from data_sources.access.model import Scope
from data_sources.cases.export_stream import XLSX_MAX_ROWS
from data_sources.cases.filters import CaseFilter
from data_sources.cases.query import case_count
from data_sources.model import Level
from data_sources.schema import AuditRow, NodeRow

CITY = "530100"


@dataclass(frozen=True)
class Export:
    fmt: str
    days: int
    rows: int
    bytes: int
    first_byte_s: float
    total_s: float
    growth: int  # bytes of peak RSS above the RSS before


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def window(days: int) -> dict[str, str]:
    """The filter of the city's cases reported in the last `days` local days of the year."""
    last = AS_OF.replace(tzinfo=UTC).astimezone(TZ).date()
    first = last - timedelta(days=days - 1)
    return {"period": "custom", "from": first.isoformat(), "to": last.isoformat()}


def sql_count(session: Session, days: int) -> int:
    """What SQL counts for the same filter (the table's total)."""
    root = session.scalars(select(NodeRow.id).where(NodeRow.code == CITY)).one()
    filt = CaseFilter.from_query({k: [v] for k, v in window(days).items()})
    city = Scope(root, CITY, Level.CITY, ())
    return case_count(session=session, scope=city, filt=filt, now=AS_OF, tz=TZ)


def refused(base: str, fmt: str, days: int, key: str) -> int:
    """The status of an export the server should refuse before its first byte."""
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=600)
    try:
        query = urlencode({"scope": CITY, **window(days)})
        connection.request("GET", f"/api/v1/export/cases.{fmt}?{query}", headers={"X-API-Key": key})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def export(pid: int, base: str, fmt: str, days: int, key: str) -> tuple[int, float, float, int]:
    """(bytes, first byte s, total s, peak RSS growth) of one export, read to its end."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = kib(pid, "VmRSS:")
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=3_600)
    started = time.perf_counter()
    first = 0.0
    size = 0
    try:
        query = urlencode({"scope": CITY, **window(days)})
        connection.request("GET", f"/api/v1/export/cases.{fmt}?{query}", headers={"X-API-Key": key})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"{fmt} {days} days: {response.status} {response.read()[:300]!r}")
        while block := response.read(1 << 16):
            if not size:
                first = time.perf_counter() - started
            size += len(block)
    finally:
        connection.close()
    return size, first, time.perf_counter() - started, kib(pid, "VmHWM:") - before


def last_audit(session: Session) -> tuple[int, int]:
    """(id, row count) of the newest export's audit line ((0, 0) for none)."""
    session.rollback()  # a fresh snapshot
    line = session.execute(
        select(AuditRow.id, AuditRow.detail)
        .where(AuditRow.action == "export.cases")
        .order_by(AuditRow.id.desc())
        .limit(1)
    ).first()
    return (0, 0) if line is None else (line.id, int(json.loads(line.detail or "{}")["rows"]))


def audited_rows(session: Session, after: int) -> int:
    """The row count of the export's audit line, written once the stream has ended."""
    deadline = time.monotonic() + 30
    while (found := last_audit(session))[0] <= after:
        if time.monotonic() > deadline:
            raise RuntimeError("the export was not audited")
        time.sleep(0.05)
    return found[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--days", default="37,73,183,365", help="growing windows, last one whole")
    parser.add_argument("--slack-mib", type=float, default=32)
    args = parser.parse_args()
    url = database_url()
    engine = ensure_cases(url)
    days = [int(d) for d in args.days.split(",")]
    results: list[Export] = []
    wrong = False
    with Session(engine) as session, session.begin():
        key = add_key(
            session=session, source="bench-export", role="admin", now=AS_OF, created_by="bench"
        )
    try:
        with (
            tempfile.TemporaryDirectory() as folder,
            serve(
                "app:create_app", url, Path(folder) / "server.log", GRIDCC_SIMULATE="false"
            ) as server,
            Session(engine) as session,
        ):
            wrong = measure(server.pid, server.base, session, args.formats, days, key, results)
    finally:
        with Session(engine) as session, session.begin():
            info = key_info(session=session, key=key)
            assert info is not None
            revoke_key(session=session, key_id=info.id, now=AS_OF)
    engine.dispose()
    failed = wrong
    print("\nformat  rows        peak RSS growth  vs smallest export")
    for fmt in args.formats.split(","):
        mine = [r for r in results if r.fmt == fmt]
        if not mine:
            continue
        smallest, largest = mine[0], mine[-1]
        for r in mine:
            print(
                f"{fmt:6}  {r.rows:>9,}  {r.growth / 2**20:8.1f} MiB      "
                f"{(r.growth - smallest.growth) / 2**20:+7.1f} MiB"
            )
        if largest.growth - smallest.growth > args.slack_mib * 2**20:
            print(f"NOT FLAT: {fmt} grew {(largest.growth - smallest.growth) / 2**20:.1f} MiB")
            failed = True
    return 1 if failed else 0


def measure(
    pid: int,
    base: str,
    session: Session,
    formats: str,
    days: list[int],
    key: str,
    results: list[Export],
) -> bool:
    """Each export of `formats` × `days`, measured into `results`; whether any went wrong."""
    wrong = False
    export(pid, base, "csv", 1, key)  # warm: imports, pools, caches
    baseline = kib(pid, "VmRSS:")
    say(f"server RSS after a warm-up export: {baseline / 2**20:.0f} MiB")
    counts = {n: sql_count(session, n) for n in days}
    for fmt in formats.split(","):
        for n in days:
            if fmt == "xlsx" and counts[n] > XLSX_MAX_ROWS:
                status = refused(base, fmt, n, key)
                say(f"xlsx {n:3} days {counts[n]:>9,} rows: over XLSX_MAX_ROWS, answered {status}")
                wrong = wrong or status != 413
                continue
            audited = last_audit(session)[0]
            size, first, total, growth = export(pid, base, fmt, n, key)
            rows = audited_rows(session, audited)
            results.append(Export(fmt, n, rows, size, first, total, growth))
            if rows != counts[n]:
                say(f"WRONG COUNT: {fmt} {n} days exported {rows:,} rows, SQL counts {counts[n]:,}")
                wrong = True
            say(
                f"{fmt:4} {n:3} days {rows:>9,} rows {size / 2**20:7.1f} MiB  "
                f"first byte {first:6.2f} s  total {total:6.1f} s  "
                f"{rows / total:8,.0f} rows/s  peak RSS +{growth / 2**20:6.1f} MiB  "
                f"({growth / 2**20 / max(rows, 1) * 100_000:5.2f} MiB per 100 k rows)"
            )
    return wrong


if __name__ == "__main__":
    sys.exit(main())
