"""Event→browser latency of the live overview (server-sent events) next to a 1 s polling page.

Seeds Panlong (530103) into a temporary SQLite file and starts two servers on it: gridcc
(`app:create_app`, ingest enabled) and the baseline, an ordinary Dash page whose
`dcc.Interval(interval=1000)` callback runs gridcc's own feed query (bench/polling_app.py). A load
process posts a living city (case, alarm and GPS storylines from `EventFactory`) to the ingest API
at 100 and 1,000 events/s; probes post one case report in the watched street at Poisson times
(250 ms apart on average) with a unique marker in the title, noting the send time. 1 and 20
headless Chromium pages show the street (opened on a quiet city, at most 5 per browser context so
that no context needs more than HTTP/1.1's 6 connections); bench/latency_observer.js notes when each
marker reaches a page and when it is in the DOM, and a raw stream client notes when it reaches a
socket. Latency = in the DOM − sent, on one machine clock. Per configuration it prints p50/p95/p99,
the share of (probe, page) pairs shown, CPU per process, and the ratio to the polling page measured
in the same run (compare ratios, not absolute times: the machine is shared).

    python bench/bench_latency.py [--short] [--seconds 30] [--pages 1 20] [--rates 100 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
from latency_load import LoadProcess
from latency_rig import (
    API_KEY,
    CHROMIUM_ARGS,
    HEADERS,
    Probes,
    StreamWatch,
    city,
    cpu_shares,
    cpu_ticks,
    renice_browser,
    seed,
    serve,
)
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

OBSERVER = (Path(__file__).resolve().parent / "latency_observer.js").read_text()


# ------------------------------------------------------------------ pages and figures


@dataclass
class Pages:
    wanted: int
    contexts: list[BrowserContext]
    pages: list[Page]
    errors: list[str]
    open_s: float


#: Pages per browser context. A context is one browser's network state: its own 6 connections
#: per host (HTTP/1.1), so 5 live streams and one connection for everything else; its pages share
#: a cache, so they load faster than pages that each compile every script again.
PER_CONTEXT = 5


async def open_pages(browser: Browser, url: str, n: int, ready: list[str]) -> Pages:
    """`n` pages on `url`, loaded and showing all of `ready`; one not ready within a minute is
    left out."""
    gate = asyncio.Semaphore(4)
    errors: list[str] = []
    started = time.monotonic()
    contexts = []
    for _ in range(-(-n // PER_CONTEXT)):
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        await context.add_init_script(script=OBSERVER)
        contexts.append(context)

    async def one(i: int) -> Page | None:
        async with gate:
            page = await contexts[i % len(contexts)].new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            try:
                # Not "networkidle": it may never come while a stream is open (DESIGN.md trap 9).
                await page.goto(url, wait_until="load", timeout=60_000)
                for selector in ready:
                    await page.wait_for_selector(selector, timeout=60_000)
            except PlaywrightError as exc:
                errors.append(f"page not ready: {exc.message.splitlines()[0]}")
                await page.close()
                return None
            return page

    opened = await asyncio.gather(*(one(i) for i in range(n)))
    pages = [p for p in opened if p is not None]
    return Pages(n, contexts, pages, errors, time.monotonic() - started)


async def seen_by(page: Page, answer_s: float) -> dict[str, dict[str, float]] | None:
    """What the page's observer noted; None when the page is too busy to answer in time (its
    main thread is that far behind, so it has not shown the window's probes either)."""
    try:
        found: dict[str, dict[str, float]] = await asyncio.wait_for(
            page.evaluate("window.__bench"), answer_s
        )
    except (TimeoutError, PlaywrightError):
        return None
    return found


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Row:
    rate: int
    wanted: int  # pages asked for
    pages: int  # pages that opened
    kind: str
    ingest: float  # load events/s accepted during the window
    probes: int
    shown_ms: list[float]  # in the DOM − sent, per (probe, page)
    arrived_ms: list[float]  # reached the page − sent, per (probe, page)
    delivered_ms: list[float]  # in the DOM − sent, or reached the page − sent if never drawn
    cpu: dict[str, float]
    ack_ms: list[float]
    stream_ms: list[float]  # reached a raw client of gridcc's stream − sent, per probe
    errors: int
    busy: int  # pages that did not answer in time

    def pct(self, q: float, arrived: bool = False) -> float:
        return percentile(self.arrived_ms if arrived else self.delivered_ms, q)

    def share(self, arrived: bool = False) -> float:
        total = self.probes * self.pages
        return len(self.arrived_ms if arrived else self.shown_ms) / total if total else 0.0


@dataclass(frozen=True)
class Timing:
    warmup_s: float
    window_s: float
    grace_s: float
    answer_s: float  # how long a page may take to hand over what it saw


async def measure(
    kind: str,
    rate: int,
    pages: Pages,
    load: LoadProcess,
    probes: Probes,
    stream: StreamWatch,
    processes: dict[str, int],
    timing: Timing,
) -> Row:
    """Drop a warm-up, then take the probes sent within the window, as seen by every page."""
    await asyncio.sleep(timing.warmup_s)
    errors_before = len(pages.errors)
    start, cpu_before, accepted, t0 = time.time(), cpu_ticks(), load.accepted, time.monotonic()
    await asyncio.sleep(timing.window_s)
    end, cpu_after, wall = time.time(), cpu_ticks(), time.monotonic() - t0
    ingest = (load.accepted - accepted) / wall
    await asyncio.sleep(timing.grace_s)  # the last probes of the window are still on their way
    answers = await asyncio.gather(*(seen_by(p, timing.answer_s) for p in pages.pages))
    seen = [a for a in answers if a is not None]
    window = {m: t for m, t in probes.sent.items() if start <= t < end}
    shown, arrived, delivered = [], [], []
    for page in seen:
        for marker, sent in window.items():
            if marker in page["shown"]:
                shown.append(page["shown"][marker] - 1000 * sent)
            if marker in page["arrived"]:
                arrived.append(page["arrived"][marker] - 1000 * sent)
            # Drawn; or, when ten newer items in the same frame pushed it out of the feed before
            # it could be drawn, reached the page: every probe counts, none is left out as "late".
            at = page["shown"].get(marker) or page["arrived"].get(marker)
            if at is not None:
                delivered.append(at - 1000 * sent)
    return Row(
        rate,
        pages.wanted,
        len(pages.pages),
        kind,
        ingest,
        len(window),
        shown,
        arrived,
        delivered,
        cpu_shares(cpu_before, cpu_after, wall, processes),
        [1000 * probes.ack_s[m] for m in window if m in probes.ack_s],
        [1000 * (stream.arrived[m] - t) for m, t in window.items() if m in stream.arrived],
        len(pages.errors) - errors_before,
        len(answers) - len(seen),
    )


HEADER = (
    f"{'ev/s':>5} {'pages':>5} {'page':<7} {'ingest':>6} {'probes':>6} │ "
    f"{'p50':>5} {'p95':>5} {'p99':>5} {'shown':>5} │ {'arrived':>7} {'p50':>5} {'p95':>5} │ "
    f"{'stream':>6} {'p95':>5} │ {'ack':>4} │ {'gridcc':>6} {'poller':>6} {'load':>5} {'browser':>7}"
)


def line(row: Row) -> str:
    cpu = row.cpu
    pages = str(row.wanted) if row.pages == row.wanted else f"{row.pages}/{row.wanted}"
    stream = row.stream_ms if row.kind == "sse" else []
    text = (
        f"{row.rate:>5} {pages:>5} {row.kind:<7} {row.ingest:>6,.0f} {row.probes:>6} │ "
        f"{row.pct(50):>5.0f} {row.pct(95):>5.0f} {row.pct(99):>5.0f} {row.share():>5.0%} │ "
        f"{row.share(arrived=True):>7.0%} {row.pct(50, True):>5.0f} {row.pct(95, True):>5.0f} │ "
        f"{percentile(stream, 50):>6.0f} {percentile(stream, 95):>5.0f} │ "
        f"{percentile(row.ack_ms, 50):>4.0f} │ "
        f"{cpu['gridcc']:>5.0f}% {cpu['poller']:>5.0f}% {cpu['load']:>4.0f}% {cpu['browser']:>6.0f}%"
    )
    if row.busy:
        text += f"  {row.busy} page(s) too busy to answer"
    return text + (f"  {row.errors} console errors" if row.errors else "")


def ratio_line(sse: Row, polling: Row) -> str:
    parts = [f"p{q} {sse.pct(q) / polling.pct(q):.2f}" for q in (50, 95, 99)]
    return f"{'':>19}sse/polling {' · '.join(parts)}"


async def run(args: argparse.Namespace, folder: Path) -> None:
    timing = (
        Timing(warmup_s=1.0, window_s=3.0, grace_s=2.0, answer_s=5.0)
        if args.short
        else Timing(warmup_s=5.0, window_s=args.seconds, grace_s=5.0, answer_s=15.0)
    )
    began = time.monotonic()
    url = seed(folder)
    directory, places = city(url)
    street = directory.nodes[args.scope].id
    in_scope = [b for b in places.buildings if street in directory.nodes[b[0]].path]
    print(
        f"Panlong seeded in {time.monotonic() - began:.1f} s; pages show street {args.scope}: "
        f"{len(in_scope)} of {len(places.buildings)} buildings, "
        f"≈{len(in_scope) / len(places.buildings):.0%} of the load"
    )
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared: other "
        f"jobs add noise; compare the ratios); Chromium at nice {args.browser_nice}"
    )
    print(
        f"per row: warm-up {timing.warmup_s:g} s dropped, window {timing.window_s:g} s, "
        f"grace {timing.grace_s:g} s; a probe every {args.probe_ms} ms on average (Poisson)"
    )
    env = {
        "GRIDCC_API_KEYS": json.dumps({"bench": API_KEY}),
        # The pages stand for as many viewers, each on a machine of its own; here they share one
        # address, which the per-address render limit would refuse (a laptop page asks for 7
        # renders when it opens): each page gets the allowance of one address.
        "GRIDCC_RENDER_RATE": str(5 * max(args.pages)),
        "GRIDCC_RENDER_BURST": str(30 * max(args.pages)),
    }
    if args.tick_ms:
        env["GRIDCC_TICK_MS"] = str(args.tick_ms)
    rows: list[Row] = []
    with (
        serve("app:create_app", url, folder / "gridcc.log", **env) as gridcc,
        serve("bench.polling_app:create_app", url, folder / "poller.log") as poller,
    ):
        load = LoadProcess(url, gridcc.base)
        load.start(args.rates[0])
        processes = {"gridcc": gridcc.pid, "poller": poller.pid, "load": load.pid}
        try:
            async with (
                async_playwright() as playwright,
                httpx2.AsyncClient(base_url=gridcc.base, headers=HEADERS, timeout=60) as http,
                httpx2.AsyncClient(base_url=gridcc.base, timeout=None) as raw,
            ):
                browser = await playwright.chromium.launch(
                    executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
                )
                if args.browser_nice:
                    renice_browser(args.browser_nice, set(processes.values()))
                probes = Probes(http, in_scope, args.probe_ms / 1000, np.random.default_rng(3))
                stream = StreamWatch(raw, args.scope)
                background = [asyncio.create_task(t.loop()) for t in (probes, stream)]
                print(f"servers and load up after {time.monotonic() - began:.1f} s\n\n{HEADER}")
                try:
                    everything = {"sse": gridcc.base, "polling": poller.base}
                    bases = {kind: everything[kind] for kind in args.kinds}
                    rows = await sweep(
                        args, browser, bases, load, probes, stream, processes, timing
                    )
                finally:
                    for task in background:
                        task.cancel()
                    await asyncio.gather(*background, *probes.pending(), return_exceptions=True)
                    await browser.close()
        finally:
            totals = load.stop()
    report(rows, totals, probes, folder, time.monotonic() - began)


#: What a page shows once it is loaded and live.
READY = {"sse": ["#overview-feed", ".gridcc-live-live"], "polling": [".gridcc-feed-title"]}


async def sweep(
    args: argparse.Namespace,
    browser: Browser,
    bases: dict[str, str],
    load: LoadProcess,
    probes: Probes,
    stream: StreamWatch,
    processes: dict[str, int],
    timing: Timing,
) -> list[Row]:
    """Every (pages, kind, rate): one page set per (pages, kind), rates rising within it."""
    rows = []
    for n in args.pages:
        for kind, base in bases.items():
            # Open on a quiet city, as a wall is opened before the day starts: a live overview
            # page costs its browser so much per update that 20 pages opened under load starve.
            load.set_rate(0)
            probes.active = False
            pages = await open_pages(browser, f"{base}/?scope={args.scope}", n, READY[kind])
            if args.browser_nice:  # renderers forked before the zygote was reniced
                renice_browser(args.browser_nice, set(processes.values()))
            opened = f"{len(pages.pages)} of {n}" if len(pages.pages) < n else str(n)
            print(f"{'':>6}{opened} {kind} page(s) open in {pages.open_s:.1f} s", flush=True)
            probes.active = True
            try:
                for rate in args.rates:
                    load.set_rate(rate)
                    row = await measure(kind, rate, pages, load, probes, stream, processes, timing)
                    rows.append(row)
                    print(line(row), flush=True)
            finally:
                for context in pages.contexts:
                    await context.close()
    return rows


def report(
    rows: list[Row], totals: dict[str, Any], probes: Probes, folder: Path, took: float
) -> None:
    print(f"\n{HEADER}")
    by_key = {(r.rate, r.wanted, r.kind): r for r in sorted(rows, key=lambda r: (r.rate, r.wanted))}
    for (rate, pages, kind), row in by_key.items():
        print(line(row))
        polling = by_key.get((rate, pages, "polling"))
        if kind == "sse" and polling is not None:
            print(ratio_line(row, polling))
    print(
        "\nms from a probe's POST until: p50/p95/p99 = its title is in the page's DOM (or, if "
        "ten newer items pushed it out of the feed before it was drawn, it reached the page); "
        "arrived = "
        "the page received it (server-sent event or callback response); stream = a raw client of "
        "gridcc's stream received it (the server's share); ack = the POST was answered. shown, "
        "arrived = share of (probe, page) pairs. ingest = load events/s accepted. "
        "CPU: 100% = one core."
    )
    print(
        f"load: {totals.get('accepted', 0):,} events accepted, {totals.get('failed', 0):,} failed, "
        f"{totals.get('skipped', 0):,} not sent (server behind); batch POST "
        f"p50 {totals.get('post_p50_ms', 0):.0f} ms, p95 {totals.get('post_p95_ms', 0):.0f} ms; "
        f"probes failed: {probes.failed}"
    )
    if totals.get("error"):
        print(f"last ingest error: {totals['error']}")
    for name in ("gridcc", "poller"):
        text = (folder / f"{name}.log").read_text(errors="replace")
        cut = text.count("too slow")
        problems = [ln for ln in text.splitlines() if "Traceback" in ln or "ERROR" in ln]
        lines = len(text.splitlines())
        print(f"{name} log: {lines} lines, {cut} slow streams cut off, {len(problems)} errors")
        for problem in problems[:5]:
            print(f"  {problem}")
    target = by_key.get((1000, 20, "sse"))
    if target is not None:
        # A probe that reached the page with ten newer feed items in the same frame is pushed out
        # of the ten-item feed before it is drawn: not lost. Leaving those out would leave out
        # the busiest frames, so the verdict takes every (probe, page) pair: drawn, or arrived.
        p95 = target.pct(95)
        met = p95 <= 250 and target.share(arrived=True) >= 0.99
        print(
            f"target p95 ≤ 250 ms at 1,000 events/s with 20 pages: {'met' if met else 'NOT met'} "
            f"(p95 {p95:.0f} ms over every (probe, page) pair, in the DOM or, for the "
            f"{1 - target.share() / max(target.share(arrived=True), 1e-9):.0%} pushed out of the "
            f"feed by newer items first, on arrival; {target.share(arrived=True):.0%} arrived; "
            f"server side alone: p95 {percentile(target.stream_ms, 95):.0f} ms)"
        )
    print(f"whole run: {took:.0f} s; load average now {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI mode: a few seconds per row")
    parser.add_argument("--seconds", type=float, default=30, help="window per row (full mode)")
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--kinds", nargs="+", default=["sse", "polling"], choices=READY)
    parser.add_argument("--scope", default="530103005", help="street code the pages show")
    parser.add_argument("--probe-ms", type=int, default=250, help="mean probe interval")
    parser.add_argument("--tick-ms", type=int, help="GRIDCC_TICK_MS for gridcc (its default)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--browser-nice",
        type=int,
        default=10,
        help="nice value of Chromium (0: as the servers); viewers' browsers are other machines",
    )
    args = parser.parse_args()
    args.rates.sort()  # rising within a page set: the load never sheds pending storyline steps
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
