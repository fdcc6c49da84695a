"""Server cost of the wall's fresh figures with 10 and with 200 protocol-level viewers on 10 scopes.

The hub recomputes the window figures of each watched (scope, view, language) once per
`GRIDCC_WALL_REFRESH_S` and pushes the encoded result as a `refresh` event to every stream of that
scope that asked for it (`/live/stream?scope=<code>&view=wall&lang=zh`): the cost should grow with
the scopes watched, not with the pages watching them (issue 8, acceptance 3; DESIGN.md "The truth
of a scope").

Seeds Panlong (530103, the tests' SMALL_SEED slice: 14 days of 900 cases) into a temporary SQLite
file and starts `uvicorn app:create_app --factory` with a short refresh period (`--refresh-s`, 2 s;
no simulator unless `--rate`). Ten scopes are watched: the district, four streets and five
communities. The issue's "1 and 200 viewers on 10 scopes" is read as one viewer per scope (10 in
all) against 20 per scope (200 in all): with a single viewer only one scope would be watched. Each
viewer is a raw client of the stream (asyncio + httpx2, no browser). Four phases per round, each
over the same window after a warm-up, measuring the server process's CPU seconds (utime + stime
from /proc/<pid>/stat):

    plain 10   10 viewers without view=wall: the streams alone (snapshot, deltas, pings)
    wall 10    the same 10 with view=wall: the streams and one refresh per scope and period
    plain 200  200 viewers without view=wall
    wall 200   200 with view=wall

The refresh's own cost is wall − plain at the same number of viewers, per computed refresh (the
hub's cadence is the period plus up to a quarter of it, its polling step) and per period (ten
scopes); the printed ratio is 200 viewers ÷ 10 viewers. Every refresh carries `at` (its server
time): the refreshes of the window are those stamped inside it, "expected" per viewer is every
refresh of its scope that any viewer of that scope received, and the hub's cadence per scope is
checked (no gap of two periods). Exits 1 when a viewer missed a refresh of its scope, a scope went
two periods without one, a viewer did not connect or the server cut a stream off as too slow; the
CPU figures themselves have no threshold (the machine is shared: compare ratios within a run).

    python bench/bench_refresh.py [--short] [--seconds 20] [--rounds 2] [--refresh-s 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from bench_soak import server_env
from latency_rig import AS_OF, CLK_TCK, TZ, city, cpu_ticks, serve

from data_sources import db
from data_sources.directory import Directory
from data_sources.seed.city import seed_city

#: The tests' small but real slice of the city (tests/conftest.py SMALL_SEED).
SMALL_SEED = {"districts": ["530103"], "days": 14, "cases_per_day": 900.0}
DISTRICT = "530103"
#: A refresh's data opens with `{"node": …, "lang": …, "at": <ms>`: read `at` from its head only.
AT = re.compile(rb'"at": ?([0-9]+)')


def seed(folder: Path) -> str:
    """Panlong with SMALL_SEED in a fresh SQLite file; its URL."""
    url = f"sqlite:///{folder / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, **SMALL_SEED)  # type: ignore[arg-type]
    engine.dispose()
    return url


def ten_scopes(directory: Directory) -> list[str]:
    """The district, its first four streets and the first community of five streets."""
    district = directory.nodes[DISTRICT].id
    streets = directory.children_of(district)[:5]
    communities = [directory.children_of(s)[0] for s in streets]
    return [DISTRICT, *(directory.codes[n] for n in [*streets[:4], *communities])]


# ------------------------------------------------------------------ protocol-level viewers


@dataclass
class Viewer:
    """One raw stream client of `scope`: when its snapshot came, and every refresh it received."""

    scope: str
    wall: bool
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: (the refresh's `at`, ms; its arrival, time.time() ms)
    refreshes: list[tuple[int, float]] = field(default_factory=list)
    received: int = 0  # bytes
    error: str = ""

    async def run(self, client: httpx2.AsyncClient) -> None:
        params = {"scope": self.scope} | ({"view": "wall", "lang": "zh"} if self.wall else {})
        try:
            async with client.stream("GET", "/live/stream", params=params) as response:
                if response.status_code != 200:
                    self.error = f"HTTP {response.status_code}"
                    return
                buffer = bytearray()
                async for chunk in response.aiter_bytes():
                    self.received += len(chunk)
                    scan = max(0, len(buffer) - 1)
                    buffer += chunk
                    while (end := buffer.find(b"\n\n", scan)) >= 0:
                        self._event(bytes(buffer[: min(end, 400)]))
                        del buffer[: end + 2]
                        scan = 0
        except httpx2.HTTPError as exc:
            self.error = repr(exc)
        self.error = self.error or "stream ended"

    def _event(self, head: bytes) -> None:
        if head.startswith(b"event: refresh"):
            found = AT.search(head)
            if found is not None:
                self.refreshes.append((int(found.group(1)), time.time() * 1000))
        elif b"event: snapshot" in head:
            self.ready.set()


@dataclass
class Phase:
    viewers: int
    wall: bool
    open_s: float
    start_ms: float  # the window's start, time.time() ms
    window_s: float
    server_cpu_s: float
    bench_cpu_s: float
    mbytes: float  # received by all viewers in the window
    #: per scope: the `at` of every refresh stamped in the window that any of its viewers got
    computed: dict[str, list[int]]
    #: per viewer: (refreshes of the window it got, refreshes of its scope in the window)
    got: list[tuple[int, int]]
    delivery_ms: list[float]
    failed: list[str]

    @property
    def name(self) -> str:
        return f"{'wall' if self.wall else 'plain'} {self.viewers}"

    @property
    def refreshes(self) -> int:
        return sum(len(ats) for ats in self.computed.values())


async def phase(
    client: httpx2.AsyncClient,
    scopes: list[str],
    n: int,
    wall: bool,
    pid: int,
    args: argparse.Namespace,
) -> Phase:
    """`n` viewers spread over `scopes`: open them, warm up, measure over the window, close."""
    viewers = [Viewer(scopes[i % len(scopes)], wall) for i in range(n)]
    tasks = [asyncio.create_task(v.run(client)) for v in viewers]
    started = time.monotonic()
    try:
        try:
            await asyncio.wait_for(asyncio.gather(*(v.ready.wait() for v in viewers)), 60)
        except TimeoutError:
            pass
        open_s = time.monotonic() - started
        # Warm-up: a scope's first refresh comes a period after its first viewer; then one more.
        await asyncio.sleep(args.refresh_s * 1.5 + 1 if wall else args.refresh_s)
        before, start = cpu_ticks(), time.time()
        received = sum(v.received for v in viewers)
        await asyncio.sleep(args.window_s)
        after, end = cpu_ticks(), time.time()
        mbytes = (sum(v.received for v in viewers) - received) / 1e6
        await asyncio.sleep(1.0)  # refreshes stamped inside the window still on their way
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(1.0)  # let the server see them go before the next phase

    def used(ticks: dict[int, tuple[int, int]], who: int) -> int:
        return ticks.get(who, (0, 0))[1]

    server_cpu = (used(after, pid) - used(before, pid)) / CLK_TCK
    bench_cpu = (used(after, os.getpid()) - used(before, os.getpid())) / CLK_TCK
    lo, hi = start * 1000, end * 1000
    inside = [[(at, t) for at, t in v.refreshes if lo <= at < hi] for v in viewers]
    computed: dict[str, set[int]] = {s: set() for s in scopes}
    for viewer, got in zip(viewers, inside, strict=True):
        computed[viewer.scope].update(at for at, _ in got)
    failed = [f"{v.scope}: {v.error}" for v in viewers if not v.ready.is_set()]
    return Phase(
        n,
        wall,
        open_s,
        lo,
        end - start,
        server_cpu,
        bench_cpu,
        mbytes,
        {s: sorted(ats) for s, ats in computed.items()},
        [(len(got), len(computed[v.scope])) for v, got in zip(viewers, inside, strict=True)],
        [t - at for got in inside for at, t in got],
        failed,
    )


# ------------------------------------------------------------------ figures


def max_gap_s(p: Phase) -> float:
    """The longest stretch of the window in which a scope got no refresh, edges included."""
    gaps = [0.0]
    for ats in p.computed.values():
        beats = [p.start_ms, *ats, p.start_ms + 1000 * p.window_s]
        gaps.extend((b - a) / 1000 for a, b in zip(beats, beats[1:], strict=False))
    return max(gaps)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


HEADER = (
    f"{'round':>5} {'phase':<9} {'open':>5} │ {'server CPU':>10} {'%core':>5} │ "
    f"{'refreshes':>9} {'got/expected':>13} {'min':>4} {'gap':>5} │ "
    f"{'deliver p50':>11} {'p95':>5} │ {'MB/s':>5} {'bench':>5}"
)


def line(r: int, p: Phase) -> str:
    got = sum(g for g, _ in p.got)
    expected = sum(e for _, e in p.got)
    text = (
        f"{r:>5} {p.name:<9} {p.open_s:>4.1f}s │ {p.server_cpu_s:>9.2f}s "
        f"{100 * p.server_cpu_s / p.window_s:>4.0f}% │ "
    )
    if p.wall:
        text += (
            f"{p.refreshes:>9} {f'{got}/{expected}':>13} {min(g for g, _ in p.got):>4} "
            f"{max_gap_s(p):>4.1f}s │ "
            f"{pct(p.delivery_ms, 50):>9.0f}ms {pct(p.delivery_ms, 95):>5.0f} │ "
        )
    else:
        text += f"{'':>9} {'':>13} {'':>4} {'':>5} │ {'':>11} {'':>5} │ "
    text += f"{p.mbytes / p.window_s:>5.2f} {100 * p.bench_cpu_s / p.window_s:>4.0f}%"
    if p.failed:
        text += f"  {len(p.failed)} viewer(s) never got a snapshot: {p.failed[0]}"
    return text


@dataclass
class Cost:
    """The refreshes' own server CPU at one number of viewers (wall − plain)."""

    viewers: int
    per_refresh_ms: list[float]  # per round: server CPU ms per computed (scope) refresh

    def median(self) -> float:
        return statistics.median(self.per_refresh_ms)


def cost(viewers: int, rounds: list[dict[str, Phase]]) -> Cost:
    per = []
    for phases in rounds:
        wall, plain = phases[f"wall {viewers}"], phases[f"plain {viewers}"]
        # The same window length in both phases; the difference is the refreshes' own cost.
        extra = wall.server_cpu_s - plain.server_cpu_s * wall.window_s / plain.window_s
        per.append(1000 * extra / max(wall.refreshes, 1))
    return Cost(viewers, per)


def problems(p: Phase, refresh_s: float) -> list[str]:
    """What makes the run fail: a viewer that never connected, a refresh one viewer got and
    another of the same scope did not, a scope two periods without one."""
    found = [f"{p.name}: {f}" for f in p.failed]
    if not p.wall:
        return found
    missed = sum(1 for got, expected in p.got if got < expected)
    if missed:
        found.append(f"{p.name}: {missed} viewer(s) missed refreshes of their scope")
    if (gap := max_gap_s(p)) >= 2 * refresh_s:
        found.append(f"{p.name}: a scope went {gap:.1f} s without a refresh")
    for scope, ats in p.computed.items():
        if not ats:
            found.append(f"{p.name}: no refresh of {scope} in the window")
    return found


# ------------------------------------------------------------------ the run


async def run(args: argparse.Namespace, folder: Path) -> int:
    began = time.monotonic()
    url = seed(folder)
    directory, _ = city(url)
    scopes = ten_scopes(directory)
    print(f"Panlong (SMALL_SEED) seeded in {time.monotonic() - began:.1f} s; scopes: {scopes}")
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared: other "
        f"jobs add noise; compare the ratios); refresh every {args.refresh_s:g} s; "
        f"simulator {args.rate:g} events/s; per phase: window {args.window_s:g} s after a warm-up; "
        f"{args.rounds} round(s)"
    )
    env = server_env(args.rate) | {"GRIDCC_WALL_REFRESH_S": str(args.refresh_s)}
    rounds: list[dict[str, Phase]] = []
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx2.Timeout(None, connect=30)
    log = folder / "gridcc.log"
    with serve("app:create_app", url, log, **env) as gridcc:
        print(f"server up after {time.monotonic() - began:.1f} s\n\n{HEADER}", flush=True)
        async with httpx2.AsyncClient(base_url=gridcc.base, limits=limits, timeout=timeout) as c:
            for r in range(1, args.rounds + 1):
                phases: dict[str, Phase] = {}
                for n in args.viewers:
                    for wall in (False, True):
                        p = await phase(c, scopes, n, wall, gridcc.pid, args)
                        phases[p.name] = p
                        print(line(r, p), flush=True)
                rounds.append(phases)
        text = log.read_text(errors="replace")
    return report(args, rounds, text, time.monotonic() - began)


def report(args: argparse.Namespace, rounds: list[dict[str, Phase]], log: str, took: float) -> int:
    print(
        "\nopen = until every viewer had its snapshot; server CPU over the window (100 % = one "
        "core); refreshes = computed by the hub in the window (all scopes; stamped `at` inside "
        "it); got/expected = refreshes received by the viewers ÷ the refreshes of their scopes; "
        "min = fewest one viewer got; gap = longest a scope went between two refreshes; "
        "deliver = arrival − `at` per (refresh, viewer); MB/s = bytes to all viewers; "
        "bench = this process's CPU (the clients)."
    )
    costs = [cost(n, rounds) for n in args.viewers]
    scopes = len(next(iter(rounds[0].values())).computed)
    for c in costs:
        rounds_text = " ".join(f"{ms:.1f}" for ms in c.per_refresh_ms)
        print(
            f"refresh CPU, {c.viewers:>3} viewers: {c.median():6.1f} ms per scope refresh "
            f"(rounds: {rounds_text}); {c.median() * scopes:6.0f} ms per period "
            f"({scopes} scopes), {c.median() * scopes / args.refresh_s / 10:.1f} % of a core"
        )
    first, last = costs[0], costs[-1]
    ratio = last.median() / first.median() if first.median() > 0 else float("nan")
    print(
        f"refresh CPU per period, {last.viewers} viewers ÷ {first.viewers} viewers: {ratio:.2f} "
        f"(per round: "
        + " ".join(
            f"{b / a:.2f}" if a > 0 else "nan"
            for a, b in zip(first.per_refresh_ms, last.per_refresh_ms, strict=True)
        )
        + ")"
    )
    plain = [
        p[f"plain {last.viewers}"].server_cpu_s / p[f"plain {last.viewers}"].window_s
        for p in rounds
    ]
    print(
        f"the streams alone, {last.viewers} viewers: {100 * statistics.median(plain):.0f} % of a "
        f"core (no refreshes)"
    )
    slow = log.count("too slow")
    errors = [ln for ln in log.splitlines() if "Traceback" in ln or "ERROR" in ln]
    print(f"server log: {slow} slow streams cut off, {len(errors)} errors")
    for error in errors[:5]:
        print(f"  {error}")
    found = [f for phases in rounds for p in phases.values() for f in problems(p, args.refresh_s)]
    found += [f"the server cut {slow} slow stream(s) off"] if slow else []
    print(f"whole run: {took:.0f} s; load average now {os.getloadavg()[0]:.1f}")
    if found:
        print("FAIL:", *found[:20], sep="\n  ")
        return 1
    print("every viewer got every refresh of its scope, each scope at least one per period")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI mode: ≈1–2 minutes")
    parser.add_argument("--seconds", type=float, default=20, help="window per phase (full mode)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of four phases (full mode)")
    parser.add_argument("--viewers", type=int, nargs=2, default=[10, 200])
    parser.add_argument("--refresh-s", type=float, default=2.0, help="GRIDCC_WALL_REFRESH_S")
    parser.add_argument("--rate", type=float, default=0.0, help="simulated events/s (0: none)")
    args = parser.parse_args()
    args.window_s = 5 * args.refresh_s if args.short else args.seconds
    args.rounds = 1 if args.short else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
