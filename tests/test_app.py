"""The app factory and its wiring: settings, services, lifespan, ids, a second app in one process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash import Input, Output, html
from dash.exceptions import CallbackException
from fastapi.testclient import TestClient

from app import create_app
from callbacks.overview import parse_search
from callbacks.pages import check_ids, unknown_ids
from data_sources.services import Services
from data_sources.settings import Settings
from layouts import ids, pages
from layouts import overview as overview_layout


def test_settings_read_the_gridcc_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDCC_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("GRIDCC_KPI_WINDOW_DAYS", "7")
    settings = Settings()
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert settings.kpi_window_days == 7
    assert settings.redis_url is None


def test_settings_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDCC_DEFAULT_LANG", "fr")
    with pytest.raises(ValueError, match="default_lang"):
        Settings()


def _walk(component: Any) -> Iterator[Any]:
    yield component
    children = getattr(component, "children", None)
    if isinstance(children, list | tuple):
        for child in children:
            yield from _walk(child)
    elif children is not None and hasattr(children, "to_plotly_json"):
        yield from _walk(children)


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def test_two_apps_in_one_process_each_serve_their_own_page(tmp_path: Path) -> None:
    apps = [create_app(Settings(database_url=f"sqlite:///{tmp_path / n}")) for n in ("a", "b")]
    for app in apps:
        with TestClient(app) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            index = client.get("/")
            assert index.status_code == 200
            assert "/vendor/bootstrap/css/bootstrap.min.css" in index.text
            assert client.get("/vendor/bootstrap/css/bootstrap.min.css").status_code == 200
            dependencies = client.get("/_dash-dependencies").json()
            outputs = " ".join(d["output"] for d in dependencies)
            assert ids.Overview.CONTENT in outputs


def test_no_component_has_an_auto_generated_id(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    layout = app.state.dash.layout
    tree = layout() if callable(layout) else layout
    found = [c for c in _walk(tree) if _is_uuid(getattr(c, "id", None))]
    assert found == []
    for key in app.state.dash.callback_map:
        assert not any(_is_uuid(part.split(".")[0]) for part in key.strip(".").split("..")), key


def test_every_id_a_callback_names_is_in_a_page(tmp_path: Path) -> None:
    dash_app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}")).state.dash
    assert dash_app.config.suppress_callback_exceptions is False
    layout_ids = {getattr(c, "id", None) for c in dash_app.validation_layout._traverse()}
    assert {ids.App.PAGE, ids.Overview.CONTENT, ids.Wall.MAP} <= layout_ids
    assert len(dash_app.callback_map) >= 4
    assert unknown_ids(dash_app) == []


def test_a_callback_naming_an_unknown_id_fails(tmp_path: Path) -> None:
    dash_app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'u.db'}")).state.dash
    dash_app.callback(Output("overview-contnet", "children"), Input(ids.App.URL, "pathname"))(
        lambda _pathname: None
    )
    dash_app.callback(Output(ids.Overview.TITLE, "title"), Input("wall-maps", "zoom"))(
        lambda _zoom: None
    )
    assert unknown_ids(dash_app) == ["overview-contnet", "wall-maps"]
    with pytest.raises(CallbackException, match="overview-contnet, wall-maps"):
        check_ids(dash_app)


def test_the_app_does_not_start_when_a_page_lacks_a_callback_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def without_the_wall(_tile_url: str | None, _tz: str) -> Any:
        return html.Div([pages.shell(), overview_layout.page({})])

    monkeypatch.setattr(pages, "validation_layout", without_the_wall)
    with pytest.raises(CallbackException, match=ids.Wall.TITLE):
        create_app(Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.redis
@pytest.mark.anyio
async def test_services_open_and_close_a_real_redis(redis_url: str, tmp_path: Path) -> None:
    services = Services.create(
        Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", redis_url=redis_url)
    )
    assert services.redis is not None
    assert await services.redis.ping() is True
    await services.aclose()


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("", (None, "zh")),
        ("?scope=530103", ("530103", "zh")),
        ("?scope=530103&lang=en", ("530103", "en")),
        ("?lang=xx", (None, "zh")),
        (None, (None, "zh")),
    ],
)
def test_parse_search(search: str | None, expected: tuple[str | None, str]) -> None:
    assert parse_search(search, "zh") == expected
