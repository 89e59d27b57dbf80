"""Issue #13 finding 7 (web half): a strict CSP that the pages really work under (no inline script),
no framing, nosniff, no Referer; the token never on the command line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from datacap.errors import ConfigError
from datacap.web.app import SECURITY_HEADERS, create_app
from datacap.web.auth import TOKEN_ENV, resolve_token

from ..conftest import datacap_cmd, subprocess_env
from .conftest import TOKEN, Store

PAGES = ["/", "/usage", "/who", "/when", "/alerts", "/plan", "/calibrate", "/login"]


def assert_hardened(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, getattr(response, "url", ""))
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp and "unsafe-eval" not in csp


def test_every_kind_of_response_carries_the_security_headers(store: Store) -> None:
    with TestClient(create_app(store.db, store.cfg), base_url="http://127.0.0.1") as c:
        for path in [*PAGES, "/api/v1/summary", "/api/v1/usage?by=nope", "/metrics", "/static/app.js",
                     "/api/v1/openapi.json", "/no-such-page"]:
            assert_hardened(c.get(path))
        assert_hardened(c.get("/", headers={"host": "evil.example"}))  # the 421 refusal too
    with TestClient(create_app(store.db, store.cfg, TOKEN), base_url="http://127.0.0.1") as c:
        assert_hardened(c.get("/api/v1/summary"))  # 401
        assert_hardened(c.get("/usage", follow_redirects=False))  # 303 to the login


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_no_inline_script(store: Store, path: str) -> None:
    """Every <script> loads from /static, or is a JSON data block a browser never runs."""
    with TestClient(create_app(store.db, store.cfg), base_url="http://127.0.0.1") as c:
        html = c.get(path).text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    for attrs, body in scripts:
        if 'type="application/json"' in attrs:
            assert "<" not in body  # nothing inside can close the element early
            continue
        assert re.search(r'src="/static/', attrs) and not body.strip(), attrs
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers either


def test_the_words_block_survives_hostile_text(store: Store) -> None:
    from datacap.web.pages import _script_json

    text = _script_json({"x": "</script><script>alert(1)</script>"})
    assert "</script>" not in text and "<" not in text


def test_token_on_the_command_line_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(datacap_cmd("serve", "--token", "0123456789abcdef0123", "--db", str(tmp_path / "x.db")),
                          capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert done.returncode == 2, done
    assert "--token puts the token in the process list" in done.stderr and "--token-file" in done.stderr
    assert "Traceback" not in done.stderr


def test_token_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              store: Store) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")
    assert resolve_token(store.cfg, path) == TOKEN
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-0123")
    assert resolve_token(store.cfg, None) == "from-the-environment-0123"
    assert resolve_token(store.cfg, path) == TOKEN  # an explicit file wins
    monkeypatch.delenv(TOKEN_ENV)
    cfg = store.cfg.model_copy(update={"web": store.cfg.web.model_copy(update={"token_file": str(path)})})
    assert resolve_token(cfg) == TOKEN
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="the token file is empty"):
        resolve_token(store.cfg, tmp_path / "empty")
    with pytest.raises(ConfigError, match="cannot read the token file"):
        resolve_token(store.cfg, tmp_path / "missing")
