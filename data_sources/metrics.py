"""Prometheus metrics of one app: ingest outcomes, the projector, open streams, render time.

A registry per app, never prometheus-client's global default: tests (and `create_app` called twice)
build several apps in one process, and the default registry refuses a second metric of a name.
Gauges of the pipeline are read when scraped (a custom collector over `ProjectorLoop.health()` and
the hub), so nothing has to keep them up to date.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from data_sources.health import PipelineHealthLike

#: The `/metrics` answer's content type (text exposition format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Outcome = Literal["accepted", "rejected", "duplicate"]
#: Render times of a page's server callback: the wall's first render is ≈0.2–1 s on a district.
RENDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Throughput is averaged over the scrapes of the last minute (`rate(…applied_total[1m])` in
#: PromQL says the same; the gauge is for dashboards that read one value).
THROUGHPUT_WINDOW_S = 60.0


class _PipelineCollector(Collector):
    """The projector's and the hub's figures, read at scrape time."""

    def __init__(
        self, health: Callable[[], PipelineHealthLike | None], open_streams: Callable[[], int]
    ) -> None:
        self._health = health
        self._open_streams = open_streams
        self._samples: deque[tuple[float, int]] = deque()

    def _throughput(self, applied: int) -> float:
        now = time.monotonic()
        while self._samples and now - self._samples[0][0] > THROUGHPUT_WINDOW_S:
            self._samples.popleft()
        if self._samples and applied < self._samples[-1][1]:
            self._samples.clear()  # a new projector (restarted loop) counts from 0 again
        self._samples.append((now, applied))
        first_at, first = self._samples[0]
        return (applied - first) / (now - first_at) if now > first_at else 0.0

    def collect(self) -> Iterator[Metric]:
        streams = GaugeMetricFamily(
            "gridcc_open_streams", "Live streams (pages) open on this process."
        )
        streams.add_metric([], self._open_streams())
        yield streams
        health = self._health()
        if health is None:
            return  # no projector in this process (yet): no figures rather than zeros
        figures = (
            ("gridcc_projector_lag_seconds", "Age of the oldest published event not yet applied."),
            (
                "gridcc_projector_stalled_seconds",
                "Seconds since the projector last completed a step.",
            ),
            ("gridcc_dead_letters", "Events parked in the dead-letter table."),
        )
        values = (health.lag_s, health.stalled_s, health.dead_letters)
        for (name, doc), value in zip(figures, values, strict=True):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], value)
            yield gauge
        applied = CounterMetricFamily(
            "gridcc_projector_applied", "Events applied by the projector since it started."
        )
        applied.add_metric([], health.applied)
        yield applied
        throughput = GaugeMetricFamily(
            "gridcc_projector_throughput_events_per_second",
            f"Events applied per second over the scrapes of the last {THROUGHPUT_WINDOW_S:g} s.",
        )
        throughput.add_metric([], self._throughput(health.applied))
        yield throughput


class Metrics:
    """One app's metrics. The ingest route calls `count_ingest`, the page callbacks
    `observe_render`; `GET /metrics` answers `exposition()`."""

    def __init__(
        self,
        health: Callable[[], PipelineHealthLike | None] = lambda: None,
        open_streams: Callable[[], int] = lambda: 0,
    ) -> None:
        self.registry = CollectorRegistry()
        self._ingest = Counter(
            "gridcc_ingest_events",
            "Events posted to ingest, by source (API key) and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self._render = Histogram(
            "gridcc_render_seconds",
            "Server time of a page's render callback, by view.",
            ["view"],
            buckets=RENDER_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_PipelineCollector(health, open_streams))

    def count_ingest(self, source: str, outcome: Outcome, n: int = 1) -> None:
        """`n` events of `source` were accepted (202), rejected (4xx) or duplicates (409)."""
        if n > 0:
            self._ingest.labels(source=source, outcome=outcome).inc(n)

    def observe_render(self, view: str, seconds: float) -> None:
        """A render callback of `view` ("wall", "overview") took `seconds`."""
        self._render.labels(view=view).observe(seconds)

    def exposition(self) -> bytes:
        """Every metric in Prometheus's text format."""
        return generate_latest(self.registry)
