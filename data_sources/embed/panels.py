"""The wall's panels an embed may show (a grant names some of them; a token carries them)."""

from __future__ import annotations

#: In the order an embed lays them out.
PANELS = (
    "kpis",
    "map",
    "alarms",
    "feed",
    "trend",
    "channels",
    "ranking",
    "funnel",
    "categories",
)


def parse_panels(text: str) -> tuple[str, ...]:
    """Panel names from "kpis,map" (in `PANELS` order, each once).

    Raises:
        ValueError: empty, or a name that is no panel (the message names it and the known ones).
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"name at least one panel of: {', '.join(PANELS)}")
    unknown = [n for n in names if n not in PANELS]
    if unknown:
        raise ValueError(f"no such panel: {unknown[0]!r} (panels: {', '.join(PANELS)})")
    return tuple(p for p in PANELS if p in names)
