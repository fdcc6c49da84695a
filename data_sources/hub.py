"""View deltas and the hub: compute once per changed node, fan out to every page that watches it.

After each committed batch the projector hands the hub its `Projection`. The hub marks the changed
nodes and, on a leading-edge tick, builds one compact delta per changed node — its open count and
status counts, those of its changed children, new feed items — numbers it, keeps it in that node's
ring buffer (for `Last-Event-ID` resume) and puts it on the bounded queue of every stream watching
the node. A slow stream whose queue is full is cut off and reconnects with a fresh snapshot, so one
stuck page can never grow memory. Cost per tick ∝ changed nodes, not events × viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from data_sources.directory import Directory
from data_sources.health import PipelineHealthLike, PipelineState, pipeline_status
from data_sources.live import LiveState
from data_sources.model import FACT_LEVELS, CaseStatus, Level
from data_sources.projector import Projection
from data_sources.wall import day_start
from data_sources.wall_layers import NEARBY_M

log = logging.getLogger(__name__)
OPEN_STATUSES = tuple(s.value for s in CaseStatus if s.is_open)
RING = 256
#: A node nobody has watched for this long is forgotten (its ring dropped; a resume re-snapshots).
UNWATCHED_S = 600.0
FEED_PER_DELTA = 20
#: Moved workers per delta: a whole city's 7,000 workers at a 30 s interval move ≈60 per frame.
WORKERS_PER_DELTA = 2_000
QUEUE = 64
#: How often the figures of a window (rates, funnel, categories, ranking, trend…) of each watched
#: scope are computed again and pushed to its pages (`Settings.wall_refresh_s` sets it).
REFRESH_S = 30.0
#: A view's refresh of one scope in one language: (node id, lang) → the `refresh` event's data
#: (JSON), for every page that watches it; None when there is nothing to send.
Refresher = Callable[[int, str], Awaitable[str | None]]
#: How often the projector's health is looked at: a page learns of a stall within ~1–2 s, not at
#: the next 15 s heartbeat.
STATUS_EVERY_S = 1.0
#: Where a grid's id sits in a path of node ids (district, street, community, grid, building).
GRID_AT = FACT_LEVELS.index(Level.GRID)
COMMUNITY_AT = FACT_LEVELS.index(Level.COMMUNITY)


def _nodes(root: int | None, path: tuple[int, ...]) -> tuple[int, ...]:
    return (root, *path) if root is not None else path


def open_count(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in OPEN_STATUSES)


@dataclass(eq=False)
class Subscription:
    """One stream's view of one node; `closed` is set when the hub cut it off. A stream of a `view`
    that has a refresher (the wall) also gets that view's refresh of its node in its `lang`."""

    node: int
    view: str | None = None
    lang: str = "zh"
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    closed: bool = False


@dataclass
class Hub:
    live: Callable[[], LiveState]
    directory: Callable[[], Directory]
    tick_s: float = 0.1
    _subs: defaultdict[int, set[Subscription]] = field(default_factory=lambda: defaultdict(set))
    _rings: dict[int, deque[dict[str, Any]]] = field(default_factory=dict)
    _children: defaultdict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    #: New items per watched node since the last frame: case feed, alarm ticker, moved workers.
    _feed: defaultdict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _alarms: defaultdict[int, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _moved: defaultdict[int, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    #: Cases reported today (the command centre's day, `tz`) per watched node and channel since
    #: the last frame: the wall's 今日新增 tile and channel donut grow by them.
    _reported: defaultdict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC).replace(tzinfo=None))
    #: Watched buildings by their grid. A building's wall shows its grid's workers and the alarms of
    #: its grid's cameras (all "nearby"), but a worker's path stops at the grid and a camera's at its
    #: own building: those items are handed down to the grid's watched buildings.
    _below: defaultdict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    #: Watched buildings by the cameras within `NEARBY_M` of them (by camera id): "nearby" reaches
    #: over the grid's border, and the wall's first render (wall_layers.scope_cameras) counts those.
    _near: defaultdict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    #: The nearby cameras of each watched building (to let go of them when it is forgotten).
    _cameras_near: dict[int, list[int]] = field(default_factory=dict)
    #: Per watched node: the first delta id its ring can hold (resume before that → snapshot).
    _tracked: dict[int, int] = field(default_factory=dict)
    #: Delta ids: milliseconds at start, so they keep increasing across restarts.
    _next_id: int = field(default_factory=lambda: int(time.time() * 1000))
    #: This hub's life: the streams' event ids are "<life>-<delta id>", so an id the page kept from
    #: before a restart is never taken for one of this life (busy hubs number deltas faster than
    #: the clock's milliseconds, so the numbers of two lives can overlap).
    life: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: When the last stream of a node went away (nodes still watched are absent).
    _unwatched_since: dict[int, float] = field(default_factory=dict)
    frames: int = 0
    #: Per view: what computes its refresh (registered by the view's callbacks module).
    refreshers: dict[str, Refresher] = field(default_factory=dict)
    refresh_s: float = REFRESH_S
    #: When each watched (node, view, lang) is due for its next refresh (monotonic seconds).
    _refresh_due: dict[tuple[int, str, str], float] = field(default_factory=dict)
    refreshes: int = 0
    #: The projector's health (None: no projector to ask); its state goes to every stream.
    health: Callable[[], PipelineHealthLike | None] | None = None
    #: The pipeline's status as the pages last heard it (`health.pipeline_status`): in every
    #: snapshot and ping, and pushed as a `status` event to every stream when it changes.
    pipeline: dict[str, Any] = field(
        default_factory=lambda: {"state": PipelineState.LIVE.value, "lag": 0, "since": None}
    )
    status_every_s: float = STATUS_EVERY_S

    # -------------------------------------------------------------- intake (projector side)

    def on_projection(self, projection: Projection) -> None:
        """Remember what changed; the next tick turns it into deltas."""
        root = self.live().root_id
        codes = self.directory().codes
        item: dict[str, Any]
        today: datetime | None = None
        for case in projection.cases:
            if case.reported_at is not None:
                today = today or day_start(self.clock(), self.tz)
                if case.reported_at >= today:
                    self._count(_nodes(root, case.path), self._reported, case.channel)
            item = {
                "id": case.case_id,
                "title": case.title,
                "category": case.category,
                "status": case.new.value,
                "at": case.at.isoformat() + "Z",
                "new": case.old is None,
                # Where, at every watched level: a page names the child of its scope on it.
                "path": [codes.get(n, "") for n in case.path],
            }
            self._touch(_nodes(root, case.path), self._feed, item)
        for alarm in projection.alarms:
            item = {
                "id": alarm.alarm_id,
                "type": alarm.type,
                "severity": alarm.severity,
                "status": alarm.status.value,
                "at": alarm.at.isoformat() + "Z",
                "new": not alarm.was_open and alarm.is_open,
                "path": [codes.get(n, "") for n in alarm.path],
            }
            if alarm.lon is not None and alarm.lat is not None:
                item |= {
                    "camera": alarm.camera,
                    "place": alarm.place,
                    "lon": alarm.lon,
                    "lat": alarm.lat,
                }
            self._touch(_nodes(root, alarm.path), self._alarms, item)
            self._hand_down(alarm.path, self._alarms, item, camera=alarm.camera)
        for fix in projection.positions:
            at = fix.ts.isoformat() + "Z"
            item = {"id": fix.code, "lon": fix.lon, "lat": fix.lat, "at": at}
            self._touch(_nodes(root, fix.path), self._moved, item)
            self._hand_down(fix.path, self._moved, item)
        if projection.cases or projection.alarms or projection.positions:
            self._wake.set()

    def _touch(
        self,
        nodes: tuple[int, ...],
        items: defaultdict[int, list[dict[str, Any]]],
        item: dict[str, Any],
    ) -> None:
        for i, node in enumerate(nodes):
            if node not in self._tracked:
                continue  # never watched: no delta to build
            if i + 1 < len(nodes):
                self._children[node].add(nodes[i + 1])
            else:
                self._children.setdefault(node, set())
            items[node].append(item)

    def _count(
        self, nodes: tuple[int, ...], counters: defaultdict[int, Counter[str]], key: str
    ) -> None:
        """One more `key` for each watched node of `nodes` (every one: counts are not capped)."""
        for node in nodes:
            if node in self._tracked:
                counters[node][key] += 1

    def _hand_down(
        self,
        path: tuple[int, ...],
        items: defaultdict[int, list[dict[str, Any]]],
        item: dict[str, Any],
        camera: str = "",
    ) -> None:
        """Give `item` (at `path`) to the watched buildings that show it but that its path misses:
        those of its grid and, for an alarm, those within `NEARBY_M` of its `camera`."""
        buildings: set[int] = set()
        if len(path) > GRID_AT and self._below:
            buildings |= self._below.get(path[GRID_AT], set())
        if camera and self._near:
            place = self.directory().cameras.get(camera)
            if place is not None:
                buildings |= self._near.get(place.id, set())
        for building in buildings:
            if building in self._tracked and building not in path:
                self._children.setdefault(building, set())
                items[building].append(item)

    def _grid_of_building(self, node: int) -> int | None:
        """The grid of `node` when it is a building (its path runs down to itself), else None."""
        directory = self.directory()
        place = directory.nodes.get(directory.codes.get(node, ""))
        if place is None or len(place.path) != len(FACT_LEVELS) or place.path[-1] != node:
            return None
        return place.path[GRID_AT]

    # -------------------------------------------------------------- ticking

    async def run(self) -> None:
        """Leading edge: the first change after a quiet spell goes out at once; changes within the
        next `tick_s` are merged into the next frame."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), UNWATCHED_S / 4)
            self._wake.clear()
            self.flush()
            self.forget_unwatched()
            await asyncio.sleep(self.tick_s)

    async def run_refreshes(self) -> None:
        """Refresh the watched scopes as they come due: once per (scope, view, language) and
        period, however many pages watch it, one at a time (bounded cost)."""
        while True:
            await asyncio.sleep(min(1.0, self.refresh_s / 4))
            try:
                await self.refresh_due()
            except Exception:  # never let one bad scope stop every wall's refresh
                log.exception("refresh failed")

    async def refresh_due(self, now: float | None = None) -> int:
        """Compute and deliver every refresh that is due; returns how many were computed."""
        now = time.monotonic() if now is None else now
        watched = {
            (sub.node, sub.view, sub.lang)
            for subs in self._subs.values()
            for sub in subs
            if sub.view is not None and sub.view in self.refreshers
        }
        for key in list(self._refresh_due):
            if key not in watched:
                del self._refresh_due[key]  # nobody watches it: no cost, and a fresh start
        done = 0
        for key in sorted(watched, key=lambda k: self._refresh_due.get(k, 0.0)):
            # A scope's first page has just rendered it: its first refresh is a period away.
            due = self._refresh_due.setdefault(key, now + self.refresh_s)
            if now < due:
                continue
            # The cadence is kept (a refresh is never later than its period), and one that came
            # late is not followed by a burst.
            self._refresh_due[key] = max(due + self.refresh_s, now + self.refresh_s / 2)
            node, view, lang = key
            try:
                body = await self.refreshers[view](node, lang)
            except Exception:
                log.exception("refresh of node %s (%s, %s) failed", node, view, lang)
                continue
            done += 1
            self.refreshes += 1
            if body is None:
                continue
            # The whole event, encoded once: a refresh is tens of kB, for every page of the scope.
            message = {"refresh": f"event: refresh\ndata: {body}\n\n".encode()}
            for sub in list(self._subs.get(node, ())):
                if sub.view == view and sub.lang == lang:
                    self._deliver(sub, message)
        return done

    async def run_status(self) -> None:
        """Look at the projector's health every `status_every_s` and tell every page at once
        when its state changes (a stall must not wait for the next heartbeat)."""
        while True:
            await asyncio.sleep(self.status_every_s)
            try:
                self.check_status()
            except Exception:  # a failing health() must not stop the pages' status for good
                log.exception("pipeline status check failed")

    def check_status(self, now_ms: int = 0) -> bool:
        """Push a `status` event to every stream when the pipeline's state (or, while it is not
        live, its whole seconds of lag) changed; whether it did."""
        health = self.health() if self.health is not None else None
        status = pipeline_status(health, self.pipeline, now_ms)
        if status == self.pipeline:
            return False
        self.pipeline = status
        # One encoding for every page (like a refresh); `at` stamps it as any message is.
        body = json.dumps({**status, "at": now_ms or int(time.time() * 1000)})
        message = {"status": f"event: status\ndata: {body}\n\n".encode()}
        for subs in list(self._subs.values()):
            for sub in list(subs):
                self._deliver(sub, message)
        return True

    @property
    def open_streams(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    def forget_unwatched(self, now: float | None = None) -> None:
        """Stop tracking nodes nobody has watched for `UNWATCHED_S`: bounded memory and tick cost
        however many nodes have ever been browsed."""
        now = time.monotonic() if now is None else now
        for node, since in list(self._unwatched_since.items()):
            if now - since > UNWATCHED_S:
                del self._unwatched_since[node]
                self._tracked.pop(node, None)
                self._rings.pop(node, None)
                grid = self._grid_of_building(node)
                if grid is not None:
                    self._below[grid].discard(node)
                    if not self._below[grid]:
                        del self._below[grid]
                for camera in self._cameras_near.pop(node, ()):
                    self._near[camera].discard(node)
                    if not self._near[camera]:
                        del self._near[camera]

    def flush(self) -> None:
        changed, self._children = self._children, defaultdict(set)
        feeds, self._feed = self._feed, defaultdict(list)
        alarms, self._alarms = self._alarms, defaultdict(list)
        moved, self._moved = self._moved, defaultdict(list)
        reported, self._reported = self._reported, defaultdict(Counter)
        if not changed:
            return
        self.frames += 1
        live = self.live()
        codes = self.directory().codes
        # Server time the frame was built: the page measures how far behind its data are (● 延迟).
        at = int(time.time() * 1000)
        for node, children in changed.items():
            self._next_id += 1
            delta = {
                "id": self._next_id,
                "at": at,
                "node": codes.get(node, str(node)),
                "open": open_count(live.counts_of(node)),
                "counts": live.counts_of(node),
                "alarms": live.open_alarms.get(node, 0),
                "children": {
                    codes.get(c, str(c)): {
                        "open": open_count(live.counts_of(c)),
                        "alarms": live.open_alarms.get(c, 0),
                        "high": live.open_high.get(c, 0),
                    }
                    for c in children
                },
                "feed": feeds.get(node, [])[-FEED_PER_DELTA:],
                "alarm_feed": alarms.get(node, [])[-FEED_PER_DELTA:],
                # The latest fix of each worker that moved (a dict keeps the last one per id).
                "workers": list({w["id"]: w for w in moved.get(node, [])}.values())[
                    -WORKERS_PER_DELTA:
                ],
            }
            if node in reported:
                delta["reported"] = dict(reported[node])
            self._rings.setdefault(node, deque(maxlen=RING)).append(delta)
            for sub in list(self._subs.get(node, ())):
                self._deliver(sub, delta)

    def _deliver(self, sub: Subscription, delta: dict[str, Any]) -> None:
        try:
            sub.queue.put_nowait(delta)
        except asyncio.QueueFull:
            log.warning("stream for node %s too slow: cut off (it will re-snapshot)", sub.node)
            self.unsubscribe(sub)
            sub.closed = True
            # Drop everything unsent, so the browser's Last-Event-ID points before the gap and
            # its reconnect gets the missed deltas (or a snapshot), never a silent hole.
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queue.put_nowait({"cut": True})

    # -------------------------------------------------------------- streams

    def event_id(self, delta_id: int) -> str:
        """The stream's `id:` of delta (or snapshot) `delta_id`."""
        return f"{self.life}-{delta_id}"

    def resume_point(self, event_id: str | None) -> int | None:
        """The delta id a page says it has (`Last-Event-ID`), or None when it has none of this
        life (fresh, from before a restart, or not ours): then it gets a snapshot.

        Never raises, whatever a client sends: `str.isdigit` accepts "²³" and `int` refuses
        more than 4,300 digits, so only up to 18 ASCII digits (an int64) are read as a number.
        """
        life, _, number = (event_id or "").rpartition("-")
        if life != self.life or not (number.isascii() and number.isdigit()) or len(number) > 18:
            return None
        return int(number)

    @property
    def last_id(self) -> int:
        """The id of the newest delta (a snapshot taken now is current up to it)."""
        return self._next_id

    def subscribe(self, node: int, view: str | None = None, lang: str = "zh") -> Subscription:
        """Watch `node` (for `view` in `lang`); from now on its changes are kept in its ring,
        watched or not."""
        sub = Subscription(node, view, lang)
        self._subs[node].add(sub)
        if node not in self._tracked:
            self._tracked[node] = self._next_id + 1
            grid = self._grid_of_building(node)
            if grid is not None:
                self._below[grid].add(node)
                self._follow_nearby_cameras(node)
        self._unwatched_since.pop(node, None)
        return sub

    def _follow_nearby_cameras(self, building: int) -> None:
        """Follow the cameras of `building`'s community within `NEARBY_M` (wall_layers says why
        not those beyond its community)."""
        directory = self.directory()
        centre = directory.buildings_at.at(building)
        place = directory.nodes.get(directory.codes.get(building, ""))
        if centre is None or place is None:
            return
        community = place.path[COMMUNITY_AT]
        by_id = directory.camera_paths()
        cameras = [
            camera
            for camera in directory.cameras_at.near(*centre, NEARBY_M)
            if len(by_id.get(camera, ())) > COMMUNITY_AT
            and by_id[camera][COMMUNITY_AT] == community
        ]
        self._cameras_near[building] = cameras
        for camera in cameras:
            self._near[camera].add(building)

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.node)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.node]
                self._unwatched_since[sub.node] = time.monotonic()

    def since(self, node: int, last_id: int) -> list[dict[str, Any]] | None:
        """Deltas of `node` after `last_id`, or None when the ring no longer reaches back."""
        first = self._tracked.get(node)
        if first is None or last_id + 1 < first or last_id >= self._next_id + 1:
            return None  # not tracked back then, or an id from another life of the server
        ring = self._rings.get(node, deque())
        if len(ring) == ring.maxlen and last_id < ring[0]["id"] - 1:
            return None  # the ring has dropped what came after last_id
        return [d for d in ring if d["id"] > last_id]

    def snapshot(self, node: int) -> dict[str, Any]:
        """The node's current figures and those of all its children (what a fresh page needs)."""
        live = self.live()
        directory = self.directory()
        return {
            "node": directory.codes.get(node, str(node)),
            "open": open_count(live.counts_of(node)),
            "counts": live.counts_of(node),
            "alarms": live.open_alarms.get(node, 0),
            "children": {
                directory.codes[c]: {
                    "open": open_count(live.counts_of(c)),
                    "alarms": live.open_alarms.get(c, 0),
                    # Open high-severity alarms: the wall's area badge pulses while there is one.
                    "high": live.open_high.get(c, 0),
                }
                for c in directory.children_of(node)
            },
        }
