"""Know the card: ModemManager over D-Bus, cards keyed by SIM, carrier queries, SIM/eSIM switching.

Modules, from the edge in:

* :mod:`~datacap.modem.mm` - :class:`ModemManagerClient`, a thread-safe client (its own event loop
  thread) over :mod:`~datacap.modem.mm_async` (dbus-fast): modems, SIMs, slots, bearers, texts, USSD.
* :mod:`~datacap.modem.cards` - which card a modem interface's bytes belong to, by the active ICCID.
* :mod:`~datacap.modem.carrier` - ``[cards.carrier]`` config, the schedule and limits (pure);
  :mod:`~datacap.modem.carrier_log` - their SQLite history and ``CARRIER_MIGRATION``.
* :mod:`~datacap.modem.service` - sends due queries, reads replies and pushed texts, never answers.
* :mod:`~datacap.modem.texts` - each received text handled once (ModemManager re-announces stored
  texts on every enable), with the SIM it arrived on; ``TEXTS_MIGRATION``.
* :mod:`~datacap.modem.forward` - ``[[forward]]``: every new text to the user's channels, once.
* :mod:`~datacap.modem.actions` - ``switch-slot N`` / ``switch-profile ICCID`` alert actions.
* :mod:`~datacap.modem.lpac` - eSIM profiles through lpac; :mod:`~datacap.modem.esim` - lpac pointed
  at the right modem, slot and eUICC, and a switch that waits for the new ICCID (reset if needed).
* :mod:`~datacap.modem.restore` - data back after a switch (the modem returns disabled, no bearer).
* :mod:`~datacap.modem.runtime` - :class:`ModemRuntime`, the daemon's one call per loop.
* :mod:`~datacap.cli.modem` - ``cards``, ``sim slot``, ``esim``, ``carrier`` commands.

Everything but the CLI works without ModemManager: the daemon catches the ModemError that
``ModemManagerClient.start()`` raises and meters plain interfaces as before.
"""
