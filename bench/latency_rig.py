"""The rig of bench_latency (and of bench_soak): the seeded city, the servers, CPU accounting, the
probes and a raw stream client. The load is in latency_load.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx2
import numpy as np
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.directory import Directory, load_directory
from data_sources.seed.city import seed_city
from data_sources.simulator import SimPlaces

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 23, 6, 0)
API_KEY = "bench-latency"
HEADERS = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
MARKER = "BENCHPROBE"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHROMIUM_ARGS = [  # as tests/browser.py
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AUTOGROUP = Path("/proc/self/autogroup").exists()


# ------------------------------------------------------------------ the city and the servers


def seed(folder: Path) -> str:
    """Panlong (530103) in a fresh SQLite file; its URL."""
    url = f"sqlite:///{folder / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, districts=["530103"], days=2, cases_per_day=1000)
    engine.dispose()
    return url


def city(database_url: str) -> tuple[Directory, SimPlaces]:
    engine = db.make_engine(database_url)
    with Session(engine) as session:
        found = load_directory(session=session), SimPlaces.load(session=session)
    engine.dispose()
    return found


@dataclass(frozen=True)
class Server:
    base: str
    pid: int
    log: Path


@contextmanager
def serve(target: str, database_url: str, log: Path, **env: str) -> Iterator[Server]:
    """`uvicorn <target> --factory` on a free port, output to `log`; waits for /healthz."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    command = [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    # Pages and streams are read as anonymous visitors of the whole city may, as in the demo.
    environment = {
        **os.environ,
        "GRIDCC_DATABASE_URL": database_url,
        "GRIDCC_ANONYMOUS_SCOPE": "530100",
        **env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{target} did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield Server(base, process.pid, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


Ticks = dict[int, tuple[int, int]]


def cpu_ticks() -> Ticks:
    """{pid: (parent pid, user + system clock ticks)} of every process."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def descendants(ticks: Ticks, skip: set[int]) -> set[int]:
    """This process's descendants, not entering `skip` (the servers, the load)."""
    ours, grew = {os.getpid()}, True
    while grew:
        grew = False
        for pid, (parent, _) in ticks.items():
            if parent in ours and pid not in ours and pid not in skip:
                ours.add(pid)
                grew = True
    return ours - {os.getpid()}


def autogroup(pid: str) -> str:
    """The process's scheduler autogroup ("/autogroup-85"), or "" where the kernel has none to show
    (no autogroup support, autogroup disabled, or a container that hides it: the file can then be
    missing, unreadable or empty)."""
    if not AUTOGROUP:
        return ""
    try:
        fields = Path(f"/proc/{pid}/autogroup").read_text().split()
    except OSError:
        return ""
    return fields[0] if fields else ""


def renice_browser(nice: int, skip: set[int]) -> None:
    """Lower the priority of the browser (and the Playwright driver), so that pages that want more
    CPU than the machine has starve themselves, not the servers under test.

    Playwright starts Chromium in a session of its own, and with the kernel's autogroup scheduling
    (on here) sessions share the CPU as equals whatever their threads' nice values: lower the
    session's (its autogroup's) nice as well. Renderers started later are forked from Chromium's
    zygote and inherit both."""
    ours = autogroup("self")
    for pid in descendants(cpu_ticks(), skip):
        theirs = autogroup(str(pid))
        with contextlib.suppress(OSError):
            if ours and theirs and theirs != ours:
                Path(f"/proc/{pid}/autogroup").write_text(str(nice))
        with contextlib.suppress(OSError):
            for task in os.scandir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    if os.getpriority(os.PRIO_PROCESS, int(task.name)) < nice:
                        os.setpriority(os.PRIO_PROCESS, int(task.name), nice)


def cpu_shares(before: Ticks, after: Ticks, wall: float, named: dict[str, int]) -> dict[str, float]:
    """CPU % (100 = one core) of each named process (servers, load), of this process, and of the
    browser: every other descendant of this process (the Playwright driver and Chromium)."""
    used = {pid: after[pid][1] - before[pid][1] for pid in after if pid in before}
    browser = descendants(after, set(named.values()))
    shares = {name: used.get(pid, 0) for name, pid in named.items()}
    shares["bench"] = used.get(os.getpid(), 0)
    shares["browser"] = sum(used.get(pid, 0) for pid in browser)
    return {name: 100 * ticks / CLK_TCK / wall for name, ticks in shares.items()}


# ------------------------------------------------------------------ the probes


@dataclass
class Probes:
    """One case report in a building of the watched scope, titled with a unique marker, at Poisson
    times averaging `interval_s` apart: independent of the hub's frame period, so the probes sample
    every phase of it (a fixed 250 ms period locks onto the 250 ms frames and measures one phase)."""

    client: httpx2.AsyncClient
    buildings: list[tuple[str, float, float]]
    interval_s: float
    rng: np.random.Generator
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    #: marker → wall-clock send time (time.time()); a failed post is removed again.
    sent: dict[str, float] = field(default_factory=dict)
    ack_s: dict[str, float] = field(default_factory=dict)
    failed: int = 0
    #: Off while pages open: a page set opens on a quiet street (see bench_latency.sweep).
    active: bool = True
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def pending(self) -> list[asyncio.Task[None]]:
        """Probes still on their way."""
        return list(self._tasks)

    async def loop(self) -> None:
        seq = 0
        while True:
            if self.active:
                seq += 1
                task = asyncio.create_task(self._send(seq))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(max(0.02, float(self.rng.exponential(self.interval_s))))

    async def _send(self, seq: int) -> None:
        marker = f"{MARKER}-{seq:06d}"
        code, lon, lat = self.buildings[int(self.rng.integers(len(self.buildings)))]
        case = f"probe-{self.run}-{seq}"
        event = {
            "id": case,
            "kind": "case.reported",
            "ts": datetime.now(UTC).isoformat(),
            "node": code,
            "payload": {
                "case_id": case,
                "channel": "grid_worker",
                "category": "damaged_facility",
                "title": f"{marker} 井盖缺失（延迟探针）",
                "lon": lon,
                "lat": lat,
                "reporter": "bench",
            },
        }
        body = json.dumps(event, ensure_ascii=False).encode()
        sent = time.time()
        self.sent[marker] = sent
        try:
            response = await self.client.post("/api/v1/events", content=body)
            ok = response.status_code == 202
        except httpx2.HTTPError:
            ok = False
        if ok:
            self.ack_s[marker] = time.time() - sent
        else:
            self.failed += 1
            del self.sent[marker]


@dataclass
class StreamWatch:
    """A raw client of gridcc's stream for the watched scope: when each marker reached a socket.
    The server's share of the latency, before any browser work (`DESIGN.md`: measure many viewers
    with protocol clients, latency with a few real pages)."""

    client: httpx2.AsyncClient
    scope: str
    #: marker → wall-clock arrival (time.time()).
    arrived: dict[str, float] = field(default_factory=dict)

    async def loop(self) -> None:
        pattern = re.compile(rf"{MARKER}-[0-9]+")
        while True:
            try:
                async with self.client.stream("GET", f"/live/stream?scope={self.scope}") as r:
                    async for line in r.aiter_lines():
                        if line.startswith("data:"):
                            now = time.time()
                            for marker in pattern.findall(line):
                                self.arrived.setdefault(marker, now)
            except httpx2.HTTPError:
                await asyncio.sleep(1)
