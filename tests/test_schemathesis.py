"""Schemathesis drives every operation of the OpenAPI description against a live server: 0 server
errors (issue 9, acceptance 5), with and without a valid API key.

The `st run` command line is used, in a subprocess against a real uvicorn, rather than the
pytest plugin: what runs here is what anyone can rerun by hand against any gridcc, and Hypothesis'
warnings stay out of this process (pytest runs with `filterwarnings = error`). The ingest body
has a schema (`api_schema.events_body_schema`), so events are generated, not just headers.
Streams send a ping every 20 ms here, so Schemathesis (20 events a stream) is done with each in
well under a second instead of waiting out its timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.access.keys import add_key
from data_sources.schema import AlarmRow, CaseRow, NodeRow
from data_sources.seed.city import seed_city

from .browser import Server
from .conftest import AS_OF, TZ

pytestmark = pytest.mark.slow
SCOPE = "530126"  # 石林, the smallest district: seeds in a moment
KEY = "schemathesis-key"  # an ingest source's, seeded from GRIDCC_API_KEYS
ST = [str(Path(sys.executable).parent / "st")]  # the venv's own command
#: Checks that hold for every operation (the live stream included).
EVERYWHERE = "not_a_server_error"
#: Checks that hold for the API's own routes, whose answers are all documented.
DOCUMENTED = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "unsupported_method",
    ]
)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path, str]]:
    """A live server on a seeded district, a Schemathesis config that mixes the district's
    real scope codes, alarm ids and case ids into the generated ones (so routes get past "not
    found"), and an admin key (which every API route takes)."""
    folder = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{folder / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=[SCOPE], days=1, cases_per_day=200)
    with Session(engine) as session:
        alarms = list(session.scalars(select(AlarmRow.id).order_by(AlarmRow.id).limit(5)))
        scopes = list(session.scalars(select(NodeRow.code).order_by(NodeRow.id).limit(5)))
        cases = list(session.scalars(select(CaseRow.id).order_by(CaseRow.id).limit(5)))
    with Session(engine) as session, session.begin():  # the admin routes (dead letters) need one
        admin = add_key(session=session, source="ops", role="admin", now=AS_OF, created_by="tests")
    engine.dispose()
    toml = folder / "schemathesis.toml"
    toml.write_text(
        f"""
request-timeout = 10
[checks.negative_data_rejection]
# 413: a batch over 1,000 events (also past the schema's maxItems) is too large, not malformed.
expected-statuses = [400, 401, 404, 405, 409, 413, 415, 422]
[dictionaries.alarms]
values = {json.dumps(alarms)}
[dictionaries.scopes]
values = {json.dumps(scopes)}
[dictionaries.cases]
values = {json.dumps(cases)}
[parameters]
"path.alarm_id" = {{ dictionary = "alarms", probability = 0.3 }}
"query.scope" = {{ dictionary = "scopes", probability = 0.3 }}
"path.case_id" = {{ dictionary = "cases", probability = 0.3 }}
"""
    )
    server = Server(url, GRIDCC_API_KEYS=json.dumps({"tests": KEY}), GRIDCC_HEARTBEAT_S="0.02")
    server.start()
    try:
        yield server, toml, admin
    finally:
        server.stop()


def schemathesis(server: Server, toml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        *ST,
        "--config-file",
        str(toml),
        "run",
        f"{server.base}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261123",
        "--workers",
        "1",
        *args,
    ]
    # In the config's folder: Schemathesis keeps its cache (.schemathesis/) in the working directory.
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd=toml.parent
    )


@pytest.mark.parametrize("key", ["admin", KEY, None], ids=["admin-key", "ingest-key", "no-key"])
def test_no_operation_answers_a_server_error(
    config: tuple[Server, Path, str], key: str | None
) -> None:
    """Stateless, every operation: with a key requests reach validation (or the role check);
    without, the auth."""
    server, toml, admin = config
    key = admin if key == "admin" else key
    headers = ["--header", f"X-API-Key: {key}"] if key else []
    run = schemathesis(server, toml, "--checks", EVERYWHERE, "--max-examples", "30", *headers)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " generated, " in run.stdout and " passed" in run.stdout, run.stdout[-2000:]


def test_the_api_answers_as_it_documents(config: tuple[Server, Path, str]) -> None:
    """The ingest, alarm and dead-letter routes: documented statuses, bodies and content types,
    and invalid input (by their schemas) refused."""
    server, toml, admin = config
    run = schemathesis(
        server,
        toml,
        "--include-path-regex",
        "^/api/v1/",
        "--checks",
        DOCUMENTED,
        "--max-examples",
        "30",
        "--header",
        f"X-API-Key: {admin}",
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def test_the_events_body_and_its_answers_are_in_the_openapi_description(
    config: tuple[Server, Path, str],
) -> None:
    """Without a request-body schema Schemathesis never sent `/api/v1/events` an event."""
    server, _, _ = config
    with urllib.request.urlopen(f"{server.base}/openapi.json", timeout=10) as response:
        operation = json.load(response)["paths"]["/api/v1/events"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    one, many = body["content"]["application/json"]["schema"]["oneOf"]
    assert many["type"] == "array" and (many["minItems"], many["maxItems"]) == (1, 1000)
    kinds = {option["properties"]["kind"]["const"] for option in one["oneOf"]}
    assert "case.reported" in kinds and len(kinds) == 7
    # The server resolves `path` from `node`: sending it is an error, so it is not offered.
    assert all("path" not in option["properties"] for option in one["oneOf"])
    assert "$ref" not in json.dumps(body)  # self-contained: no refs to a missing $defs
    assert {"202", "400", "401", "409", "413", "422", "503"} <= set(operation["responses"])
