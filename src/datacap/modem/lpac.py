"""eSIM profiles through `lpac <https://github.com/estkme-group/lpac>`_, when it is installed.

lpac prints one JSON object per line: ``{"type": "progress", ...}`` lines while it works, and a final
``{"type": "lpa", "payload": {"code": 0, "message": "success", "data": ...}}`` carrying the result; a
non-zero ``code`` is a failure whose ``message``/``data`` say why. The APDU backend talking to the
eUICC is chosen with ``LPAC_APDU`` (``qmi``, ``mbim``, ``at``, ``pcsc``...); its device with
``LPAC_APDU_QMI_DEVICE``, ``LPAC_APDU_MBIM_DEVICE`` or ``LPAC_APDU_AT_DEVICE``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datacap.errors import ModemError

APDU_BACKENDS = ("qmi", "mbim", "at", "pcsc", "uqmi", "qmi_qrtr", "gbinder_hidl", "stdio")
INSTALL_HINT = ("lpac is not installed: eSIM profiles need lpac (https://github.com/estkme-group/lpac: "
                "install your distribution's package or build it, put it on PATH), then set "
                "LPAC_APDU=qmi, mbim or at and the matching device variable")
_ICCID_RE = re.compile(r"^\d{18,22}F?$")


@dataclass(frozen=True, slots=True)
class EsimProfile:
    iccid: str
    enabled: bool
    name: str | None  # profileName
    nickname: str | None  # profileNickname
    provider: str | None  # serviceProviderName
    profile_class: str | None  # operational | test | provisioning

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def parse_output(stdout: str, command: str) -> Any:
    """The ``data`` of lpac's final result line; ModemError with lpac's own message on failure."""
    result: dict[str, Any] | None = None
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue  # lpac's debug output (LIBEUICC_DEBUG_*) is not JSON: skip it
        if isinstance(obj, dict) and obj.get("type") == "lpa" and isinstance(obj.get("payload"), dict):
            result = obj["payload"]
    if result is None:
        raise ModemError(f"lpac {command}: printed no result line (is the APDU backend right? LPAC_APDU="
                         f"{os.environ.get('LPAC_APDU', 'unset')})")
    if result.get("code") != 0:
        detail = result.get("data")
        extra = f": {detail}" if detail not in (None, "", {}) else ""
        raise ModemError(f"lpac {command} failed ({result.get('code')}): {result.get('message')}{extra}")
    return result.get("data")


def profiles_from(data: Any) -> list[EsimProfile]:
    if not isinstance(data, list):
        raise ModemError(f"lpac profile list: expected a list of profiles, found {type(data).__name__}")
    out = []
    for item in data:
        if not isinstance(item, dict) or not item.get("iccid"):
            raise ModemError(f"lpac profile list: expected profiles with an iccid, found {item!r}")
        out.append(EsimProfile(
            iccid=str(item["iccid"]), enabled=item.get("profileState") == "enabled",
            name=item.get("profileName") or None, nickname=item.get("profileNickname") or None,
            provider=item.get("serviceProviderName") or None, profile_class=item.get("profileClass") or None,
        ))
    return out


class Lpac:
    """Runs lpac; ``apdu`` sets LPAC_APDU unless the environment already does; ``env`` (see
    :func:`datacap.modem.esim.lpac_target`) is set over the process's environment."""

    def __init__(self, executable: str = "lpac", *, apdu: str | None = None,
                 env: Mapping[str, str] | None = None, timeout: float = 180.0) -> None:
        if apdu is not None and apdu not in APDU_BACKENDS:
            raise ModemError(f"lpac: expected an APDU backend ({', '.join(APDU_BACKENDS)}), found {apdu!r}")
        self.executable = executable
        self.apdu = apdu
        self.env = dict(env or {})
        self.timeout = timeout

    def _run(self, *args: str) -> Any:
        exe = shutil.which(self.executable)
        if exe is None:
            raise ModemError(INSTALL_HINT)
        env = {**os.environ, **self.env}
        if self.apdu:
            env.setdefault("LPAC_APDU", self.apdu)
        command = " ".join(args)
        try:
            proc = subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ModemError(f"lpac {command}: no result within {self.timeout:.0f} s") from None
        except OSError as err:
            raise ModemError(f"lpac {command}: cannot run {exe}: {err}") from None
        try:
            return parse_output(proc.stdout, command)
        except ModemError as err:
            stderr = proc.stderr.strip().splitlines()
            if stderr and "printed no result" in str(err):
                raise ModemError(f"{err}; it said: {stderr[-1]}") from None
            raise

    def profiles(self) -> list[EsimProfile]:
        """The eUICC's profiles (``lpac profile list``)."""
        return profiles_from(self._run("profile", "list"))

    def enable(self, iccid: str, refresh: bool = True) -> None:
        """Enable profile ``iccid`` (``lpac profile enable ICCID [refreshflag]``).

        lpac asks the eUICC for a REFRESH only when the flag is given (``enable.c``: it defaults to
        off); without one, many modems keep using the old profile until they are reset.
        """
        if not _ICCID_RE.match(iccid):
            raise ModemError(f"esim enable: expected an ICCID of 18-22 digits, found {iccid!r}")
        self._run("profile", "enable", iccid, *(["1"] if refresh else []))

    def eid(self) -> str | None:
        """The EID of the eUICC lpac reaches (``lpac chip info``: ``eidValue``)."""
        data = self._run("chip", "info")
        if not isinstance(data, dict):
            raise ModemError(f"lpac chip info: expected an object, found {type(data).__name__}")
        value = data.get("eidValue")
        return str(value) if value else None
