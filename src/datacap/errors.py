"""Every error datacap raises on purpose derives from :class:`DatacapError`.

The CLI turns these into one clear message and exit status 2; anything else is a bug.

    DatacapError
    ├── ConfigError            a config file or value is invalid (names the file, key path and line)
    ├── InputError             user input (a CSV row, a size, a date, an SMS text) cannot be read
    │   └── ImportRejected     a CSV import had bad rows; carries every `FILE:LINE: reason`
    ├── StoreError             the database cannot be opened, is too new, or a write failed
    │   ├── StoreBusy          another process already writes to this store
    │   └── StoreWriteFailed   one write was refused (full disk, I/O error); nothing of it was written
    ├── MeterError             a kernel interface (netlink, /proc, nftables) is not usable
    │   └── NotPermitted       the feature needs privileges this process does not have
    ├── DeliveryError          a notification channel could not deliver a message
    └── ModemError             ModemManager, a SIM slot or an eSIM profile is not usable
        ├── ModemWrongState    the modem is disabled, locked or failed for what was asked
        └── ModemNotAuthorized polkit refused this user a ModemManager action (names the permission)
"""

from __future__ import annotations


class DatacapError(Exception):
    """Base class; ``str(err)`` is the message shown to the user."""


class ConfigError(DatacapError):
    pass


class InputError(DatacapError):
    pass


class ImportRejected(InputError):
    """Raised with every problem found, so the user can fix a file in one pass."""

    def __init__(self, problems: list[str], total: int) -> None:
        self.problems = problems
        self.total = total
        shown = "\n".join(problems)
        more = f"\n... and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__(f"{shown}{more}\nnothing was imported")


class StoreError(DatacapError):
    pass


class StoreBusy(StoreError):
    pass


class StoreWriteFailed(StoreError):
    """A write transaction failed and was rolled back; ``disk_full`` says whether space ran out."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        text = str(cause or message)
        self.disk_full = "disk is full" in text or (getattr(cause, "sqlite_errorcode", 0) or 0) & 0xFF == 13


class MeterError(DatacapError):
    pass


class NotPermitted(MeterError):
    pass


class DeliveryError(DatacapError):
    pass


class ModemError(DatacapError):
    pass


class ModemWrongState(ModemError):
    pass


class ModemNotAuthorized(ModemError):
    """``permission`` is the polkit action that was refused (org.freedesktop.ModemManager1.Messaging...)."""

    def __init__(self, message: str, permission: str) -> None:
        super().__init__(message)
        self.permission = permission
