"""Stand-ins for a ZTE and a Huawei HiLink stick's web API: real HTTP servers on loopback that behave
as the firmwares do (as their web UIs and the public clients show): the login handshake with its
challenge and the password encoding checked, sessions that must be presented, empty fields or error
codes when not logged in, a wrong password refused, monthly counters with a statistics period (the
monthly reset), a reboot that rolls the counters back to the last value saved to flash, and texts."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class StickState:
    password: str
    period: str = "202611"
    rx: int = 0
    tx: int = 0
    saved: tuple[int, int] = (0, 0)  # what the stick last wrote to flash (survives a reboot)
    texts: list[dict[str, str]] = field(default_factory=list)
    logins: int = 0
    failed_logins: int = 0
    lock = threading.Lock()

    def use(self, rx: int, tx: int) -> None:
        with self.lock:
            self.rx += rx
            self.tx += tx

    def save(self) -> None:
        with self.lock:
            self.saved = (self.rx, self.tx)

    def reboot(self) -> None:
        """Counts not yet saved to flash are lost; every session ends."""
        with self.lock:
            self.rx, self.tx = self.saved

    def month_reset(self, period: str) -> None:
        with self.lock:
            self.period, self.rx, self.tx, self.saved = period, 0, 0, (0, 0)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class Standin:
    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], state: StickState) -> None:
        self.state = state
        self.sessions: set[str] = set()
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.standin = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reboot(self) -> None:
        self.state.reboot()
        self.sessions.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()


class ZteHandler(http.server.BaseHTTPRequestHandler):
    """``/goform/goform_get_cmd_process`` and ``/goform/goform_set_cmd_process`` of a current ZTE
    firmware (WEB_ATTR_IF_SUPPORT_SHA256 = 2: the LD challenge, new for every login)."""

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def standin(self) -> Standin:
        return self.server.standin  # type: ignore[attr-defined,no-any-return]

    def _session(self) -> str | None:
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "stok" and v.strip('"') in self.standin.sessions:
                return v
        return None

    def _json(self, doc: dict[str, Any], cookie: str | None = None) -> None:
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")  # as the firmware labels it
        if cookie:
            self.send_header("Set-Cookie", f'stok="{cookie}"; path=/; HttpOnly')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/goform/goform_get_cmd_process":
            self.send_error(404)
            return
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        st = self.standin.state
        cmds = q.get("cmd", "").split(",")
        if cmds == ["LD"]:
            self.standin.ld = secrets.token_hex(32).upper()  # type: ignore[attr-defined]
            self._json({"LD": self.standin.ld})  # type: ignore[attr-defined]
            return
        logged_in = self._session() is not None
        if cmds == ["sms_data_total"]:
            self._json({"messages": st.texts if logged_in else []})
            return
        values = {"monthly_rx_bytes": str(st.rx), "monthly_tx_bytes": str(st.tx), "date_month": st.period,
                  "monthly_time": "3600", "loginfo": "ok" if logged_in else ""}
        self._json({c: (values.get(c, "") if logged_in else "") for c in cmds})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        st = self.standin.state
        if urlsplit(self.path).path != "/goform/goform_set_cmd_process" or form.get("goformId") != "LOGIN":
            self._json({"result": "failure"})
            return
        ld = getattr(self.standin, "ld", None)
        self.standin.ld = None  # type: ignore[attr-defined]  # a challenge is good for one login
        if ld is None or form.get("password") != _sha(_sha(st.password) + ld):
            st.failed_logins += 1
            self._json({"result": "3"})
            return
        st.logins += 1
        token = secrets.token_hex(16)
        self.standin.sessions.add(token)
        self._json({"result": "0"}, cookie=token)


def zte_text(ident: str, sender: str, text: str, date: str = "26,11,30,12,05,09,+32") -> dict[str, str]:
    return {"id": ident, "number": sender, "content": text.encode("utf-16-be").hex().upper(), "tag": "1",
            "date": date}


class HuaweiHandler(http.server.BaseHTTPRequestHandler):
    """HiLink ``/api``: SesTokInfo, user/login (password_type 4), monitoring/month_statistics, sms/sms-list."""

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def standin(self) -> Standin:
        return self.server.standin  # type: ignore[attr-defined,no-any-return]

    def _xml(self, body: str, headers: dict[str, str] | None = None) -> None:
        raw = f'<?xml version="1.0" encoding="UTF-8"?>{body}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=UTF-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, code: str) -> None:
        self._xml(f"<error><code>{code}</code><message></message></error>")

    def _sid(self) -> str:
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "SessionID":
                return v
        return ""

    def do_GET(self) -> None:
        st = self.standin.state
        path = urlsplit(self.path).path
        if path == "/api/webserver/SesTokInfo":
            sid, tok = secrets.token_hex(32), secrets.token_hex(16)
            self.standin.pending = {sid: tok}  # type: ignore[attr-defined]
            self._xml(f"<response><SesInfo>SessionID={sid}</SesInfo><TokInfo>{tok}</TokInfo></response>")
            return
        if path == "/api/monitoring/month_statistics":
            if self._sid() not in self.standin.sessions:
                self._error("125002")
                return
            self._xml(f"<response><CurrentMonthDownload>{st.rx}</CurrentMonthDownload><CurrentMonthUpload>{st.tx}"
                      f"</CurrentMonthUpload><MonthDuration>3600</MonthDuration><MonthLastClearTime>{st.period}"
                      "</MonthLastClearTime></response>")
            return
        self.send_error(404)

    def do_POST(self) -> None:
        st = self.standin.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        path = urlsplit(self.path).path
        if path == "/api/user/login":
            pending = getattr(self.standin, "pending", {})
            tok = pending.get(self._sid())
            if tok is None or self.headers.get("__RequestVerificationToken") != tok:
                self._error("125002")
                return
            user = body.split("<Username>")[1].split("</Username>")[0]
            given = body.split("<Password>")[1].split("</Password>")[0]
            inner = base64.b64encode(hashlib.sha256(st.password.encode()).hexdigest().encode()).decode()
            want = base64.b64encode(hashlib.sha256((user + inner + tok).encode()).hexdigest().encode()).decode()
            if user != "admin" or given != want:
                st.failed_logins += 1
                self._error("108006")
                return
            st.logins += 1
            sid = secrets.token_hex(32)
            self.standin.sessions.add(sid)
            self._xml("<response>OK</response>", {"Set-Cookie": f"SessionID={sid}; path=/; HttpOnly",
                                                  "__RequestVerificationTokenone": secrets.token_hex(16)})
            return
        if path == "/api/sms/sms-list":
            if self._sid() not in self.standin.sessions:
                self._error("125002")
                return
            msgs = "".join(f"<Message><Smstat>0</Smstat><Index>{t['id']}</Index><Phone>{t['number']}</Phone>"
                           f"<Content>{t['text']}</Content><Date>{t['date']}</Date></Message>" for t in st.texts)
            self._xml(f"<response><Count>{len(st.texts)}</Count><Messages>{msgs}</Messages></response>")
            return
        self.send_error(404)
