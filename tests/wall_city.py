"""The seeded Panlong the wall's browser tests run against, its server, and what they post to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Locator, Page
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from data_sources import db, store
from data_sources.seed.city import seed_city
from data_sources.services import utc_now
from data_sources.wall import channels, day_start
from layouts import ids
from layouts.i18n import number

from .browser import KEY, post_event, running_server
from .conftest import AS_OF, CITY, SMALL_SEED, TZ, add_account

PANLONG = "530103"
LIANMENG = "530103004"  # 联盟街道
YUANFENG = "530103004001"  # 源丰社区
GRID = "530103004001001"  # 源丰社区第1网格
BUILDING = "530103004001001006"  # 1-6号楼, with open and closed cases


def seeded_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    """Panlong seeded with SMALL_SEED (a module fixture's body)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('wall') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, **SMALL_SEED)  # type: ignore[arg-type]
    add_account(url, OPERATOR, "operator", CITY)
    yield url, engine
    engine.dispose()


#: An operator of the whole city (anonymous visitors only read; acting needs a login).
OPERATOR = "wall-operator"


@contextmanager
def serving(database_url: str, **env: str) -> Iterator[str]:
    """The app on `database_url` (and `env`), taking events from the tests' key; its base URL."""
    # A window long enough that every seeded case counts whatever today's date is.
    days = (utc_now() - AS_OF).days + 30
    keys = json.dumps({"tests": KEY})
    with running_server(
        database_url, GRIDCC_KPI_WINDOW_DAYS=str(days), GRIDCC_API_KEYS=keys, **env
    ) as base:
        yield base


def open_cases(engine: Engine, code: str) -> str:
    """Open cases of node `code` right now, as the wall formats them, straight from the database."""
    with Session(engine) as session:
        node = store.node_by_code(session=session, code=code)
        assert node is not None
        since = AS_OF - timedelta(days=3650)
        return number(store.node_tally(session=session, node=node, since=since, now=utc_now()).open)


#: The trend's hourly bars, and the current hour's (the last) count, as the browser has them.
TREND_LENGTH = "() => document.querySelector('#wall-trend-graph .js-plotly-plot').data[0].y.length"
TREND_NOW = "() => document.querySelector('#wall-trend-graph .js-plotly-plot').data[0].y.at(-1)"


def todays_cases(engine: Engine, code: str) -> str:
    """Cases of node `code` reported today (the command centre's day), straight from the database."""
    with Session(engine) as session:
        node = store.node_by_code(session=session, code=code)
        assert node is not None
        since = day_start(utc_now(), TZ)
        return number(sum(n for _, n in channels(session=session, node=node, since=since)))


def kpi_open(page: Page) -> Locator:
    return page.locator(f"#{ids.wall_kpi('open')}")


def post_fix(base: str, event_id: str, worker: str, lon: float, lat: float) -> None:
    """A GPS fix of a worker of GRID, stamped now."""
    fix = {"worker": worker, "lon": lon, "lat": lat}
    now = datetime.now(UTC).isoformat()
    post_event(
        base,
        {"id": event_id, "kind": "worker.position", "ts": now, "node": GRID, "payload": fix},
    )


def post_alarm(base: str, alarm_id: str, camera: str, node: str) -> None:
    event = {
        "id": f"raise-{alarm_id}",
        "kind": "alarm.raised",
        "ts": utc_now().isoformat() + "Z",
        "node": node,
        "payload": {"alarm_id": alarm_id, "camera": camera, "type": "fire", "severity": 4},
    }
    post_event(base, event)
