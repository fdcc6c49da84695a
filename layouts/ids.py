"""Component ids, declared once. A leaf module: imports nothing from the project."""

from __future__ import annotations

from enum import StrEnum


class Overview(StrEnum):
    """Ids of the laptop overview page `/`."""

    URL = "overview-url"
    CONTENT = "overview-content"
    LANG_LINK = "overview-lang-link"
    TITLE = "overview-title"
    LIVE = "overview-live"
    FEED = "overview-feed"


def kpi(name: str) -> str:
    """Id of the KPI tile showing `name` (a `Kpis`/`Resources` field)."""
    return f"overview-kpi-{name.replace('_', '-')}"


def child_row(code: str) -> str:
    """Id of the table row of the child node `code`."""
    return f"overview-child-{code}"


def child_cell(code: str, name: str) -> str:
    """Id of the cell showing `name` of the child node `code` (updated live)."""
    return f"overview-cell-{code}-{name.replace('_', '-')}"
