"""The shared root/namespace guard of the tests: skip locally, fail under CI=true."""

from __future__ import annotations

import pytest

from tests.conftest import require_root


def test_require_root_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        require_root()


def test_require_root_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and this test cannot run: needs root"):
        require_root()


def test_require_root_names_a_missing_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool"):
        require_root("no-such-tool")
