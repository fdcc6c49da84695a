"""gridcc's configuration: one `Settings`, from `GRIDCC_*` environment variables.

Only `app.py` and `cli.py` instantiate it (they are what reads the environment); everything else
receives it, or the values it needs, as arguments.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from data_sources.embed.origins import parse_origins
from data_sources.embed.tokens import TOKEN_DEFAULT_S, TOKEN_MAX_S

#: A list of dates from the environment: comma-separated ISO dates or a JSON list (`NoDecode`:
#: pydantic-settings would otherwise accept only JSON for a list).
DateList = Annotated[list[date], NoDecode]
#: Origins from the environment: separated by spaces or commas (`embed.origins.parse_origins`).
OriginList = Annotated[tuple[str, ...], NoDecode]
#: The shortest GRIDCC_EMBED_SECRET taken: 32 characters of `secrets.token_urlsafe` are 192 bits.
EMBED_SECRET_MIN = 32


class Settings(BaseSettings):
    """gridcc's configuration, from `GRIDCC_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="GRIDCC_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///gridcc.db", description="SQLAlchemy URL of the system of record."
    )
    redis_url: str | None = Field(
        None, description="Redis URL for the event bus and live state; unset = in-process."
    )
    timezone: str = Field("Asia/Shanghai", description="Zone for 'today' and working hours.")
    work_calendar: Literal["cn", "weekdays"] = Field(
        "cn",
        description="Working days of case time limits (时限): 'cn' = China's official calendar, "
        "public holidays off and adjusted weekends (调休) worked (package chinesecalendar; a year "
        "it has no data for counts Monday to Friday, with a warning); 'weekdays' = Monday to "
        "Friday. Working hours are 08:30-12:00 and 14:30-18:00 local time.",
    )
    extra_holidays: DateList = Field(
        default_factory=list,
        description="Local days off on top of work_calendar (e.g. a local festival): "
        "comma-separated ISO dates, GRIDCC_EXTRA_HOLIDAYS=2026-07-28,2026-07-29, or a JSON "
        'list, ["2026-07-28"]. Applies to due times computed afterwards (a stored one changes only '
        "when its case is replayed).",
    )
    extra_workdays: DateList = Field(
        default_factory=list,
        description="Local working days on top of work_calendar (e.g. a weekend worked in lieu), "
        "in the same format as extra_holidays; a date may not be in both.",
    )
    kpi_window_days: int = Field(30, ge=1, le=3660, description="Days of cases the KPIs cover.")
    default_lang: str = Field("zh", pattern="^(zh|en)$", description="UI language without ?lang=.")
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description='Ingest API keys per source, as JSON: {"hotline": "key1", "frigate": "key2"}.',
    )
    bus_maxlen: int = Field(1_000_000, ge=1_000, description="Events kept on the bus stream.")
    # 100 ms, not 250: under a steady flow of events a change waits up to one frame period for
    # its frame, so with 250 ms the wait alone has a p95 of 237 ms, leaving nothing of the
    # p95 ≤ 250 ms event→browser target (bench/bench_latency.py) for the pipeline and the browser.
    tick_ms: int = Field(100, ge=10, le=10_000, description="Frame period of live view deltas.")
    heartbeat_s: float = Field(15, gt=0, le=300, description="Live stream heartbeat period.")
    reconnect_max_s: float = Field(
        5,
        ge=0.5,
        le=300,
        description="Cap of a page's reconnect backoff after a refused stream (e.g. a proxy's 503): "
        "a page recovers at most this long (+20 % jitter) after the server is back.",
    )
    simulate: bool = Field(
        False,
        description="Run the city simulator in-process (`gridcc demo` sets it): new cases follow "
        "the seeded history's daily volume and hourly profile, alarms and GPS fixes the seed's rates.",
    )
    simulate_rate: float = Field(
        0,
        ge=0,
        le=100_000,
        description="0: the simulator follows the seeded history. > 0: instead a fixed stress-test "
        "load of this many events/s (case, alarm and GPS storylines in a fixed mix, shaped by the "
        "time of day), whatever the history; also turns the simulator on.",
    )
    simulate_speed: float = Field(
        60,
        gt=0,
        le=10_000,
        description="How much faster than real time a simulated case's steps follow its report "
        "(not how many cases are reported).",
    )
    anonymous_scope: str | None = Field(
        None,
        max_length=32,
        description="The area code anonymous visitors may read (read only, no actions); unset: "
        "every page needs a login or an enrolled display. `gridcc demo` sets the whole city.",
    )
    session_idle_minutes: float = Field(
        120, gt=0, le=7 * 24 * 60, description="A login ends after this long without a request."
    )
    session_hours: float = Field(
        12, gt=0, le=30 * 24, description="A login ends this long after it began, however used."
    )
    forwarded_allow_ips: str | None = Field(
        None,
        description="Addresses of the reverse proxies whose X-Forwarded-For/-Proto are believed "
        "(comma-separated, as uvicorn's --forwarded-allow-ips); unset: none, so no client can "
        "choose the address the login throttle and the audit log see (`gridcc serve`/`demo`).",
    )
    wall_actions: bool = Field(
        True,
        description="Offer 确认 / 转案件 on the wall's alarm ticker to those who may act (operators, "
        "admins, operator displays); false for a display-only instance: no buttons for anyone, "
        "and the wall's action callback refuses.",
    )
    laptop_refresh_s: float = Field(
        30,
        ge=0.5,
        le=3_600,
        description="At most how often a laptop page draws its filtered figures again while its "
        "scope changes (each page spreads its refreshes over the period).",
    )
    wall_refresh_s: float = Field(
        30,
        ge=0.5,
        le=3_600,
        description="How often the window figures of each watched scope (rates, funnel, "
        "categories, ranking, trend, channels, lists) are computed again and pushed to its walls: "
        "once per scope and period, however many walls watch it.",
    )
    # A wall page asks for 2 renders when it loads, 1 per drill, carousel step or resync: a
    # video-wall PC loading 8 screens at once takes 16 of the burst (data_sources/capacity.py).
    render_rate: float = Field(
        5, gt=0, le=10_000, description="Page renders per second per client address, sustained."
    )
    render_burst: int = Field(
        30, ge=1, le=100_000, description="Page renders a client address may ask for at once."
    )
    # 40 render loops at once took ingest's p95 from 9 ms to 2.3 s. Queued, they cannot: ingest's
    # p95 under them is 1.15-1.57x its p95 alone with 1 running, 4.7-5x with 2 (a render holds the
    # GIL and the loop); bench/bench_ingest_load.py, data_sources/capacity.py.
    render_concurrency: int = Field(
        1, ge=1, le=1_000, description="Page renders running at once (the others queue)."
    )
    tile_url: str | None = Field(
        None,
        description="Map tile URL template ({z}/{x}/{y}) of an intranet tile server; unset = vector only.",
    )
    ready_max_lag_s: float = Field(
        60,
        gt=0,
        description="/readyz fails while the oldest event not yet applied is older than this.",
    )
    ready_max_stalled_s: float = Field(
        10,
        gt=0,
        description="/readyz fails while the projector has not completed a step for this long.",
    )
    embed_secret: SecretStr | None = Field(
        None,
        description="Key that signs embed tokens (at least 32 characters, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`); every process of a "
        "deployment must have the same. Unset: a random key made once and kept in the database "
        "(table app_secrets), which all processes then share. Changing it invalidates every "
        "token issued.",
    )
    embed_allowed_origins: OriginList = Field(
        default=(),
        description="Origins (scheme://host[:port], separated by spaces or commas) that may frame "
        "an embed and talk to it, for grants that name none of their own; unset: only grants' "
        "own origins.",
    )
    embed_token_max_s: int = Field(
        TOKEN_MAX_S,
        ge=60,
        le=7 * 24 * 3600,
        description="The longest embed token anyone may mint, in seconds (a grant's own maximum "
        "is at most this).",
    )
    embed_token_default_s: int = Field(
        TOKEN_DEFAULT_S,
        ge=60,
        le=7 * 24 * 3600,
        description="An embed token's lifetime when its request names none, in seconds (at most "
        "its grant's maximum).",
    )

    @field_validator("embed_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < EMBED_SECRET_MIN:
            raise ValueError(
                f"GRIDCC_EMBED_SECRET has {len(value.get_secret_value())} characters: a signing "
                f"key needs at least {EMBED_SECRET_MIN} (unset it to have one made)"
            )
        return value

    @field_validator("embed_allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        """'https://a.example https://b.example:8443' (from the environment) as canonical origins."""
        if isinstance(value, str) or (
            isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        ):
            try:
                return parse_origins(value)
            except ValueError as exc:
                raise ValueError(f"GRIDCC_EMBED_ALLOWED_ORIGINS: {exc}") from None
        return value

    @field_validator("extra_holidays", "extra_workdays", mode="before")
    @classmethod
    def _date_list(cls, value: Any) -> Any:
        """'2026-07-28,2026-07-29' or '["2026-07-28"]' (from the environment) as a list."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @model_validator(mode="after")
    def _holiday_or_workday(self) -> Settings:
        if both := set(self.extra_holidays) & set(self.extra_workdays):
            days = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"both an extra holiday and an extra working day: {days}")
        return self

    @model_validator(mode="after")
    def _default_within_max(self) -> Settings:
        if self.embed_token_default_s > self.embed_token_max_s:
            raise ValueError(
                f"GRIDCC_EMBED_TOKEN_DEFAULT_S ({self.embed_token_default_s}) is over "
                f"GRIDCC_EMBED_TOKEN_MAX_S ({self.embed_token_max_s})"
            )
        return self
