"""The fleet hub: devices push their usage to one hub that shows every card in one place.

``protocol`` is the wire contract both sides share. The device side: ``config`` (``[hub]``), ``device``
(the daemon plugin), ``batches`` (batches formed from the store's outbox, :mod:`datacap.store.outbox`)
and ``sender`` (the thread that pushes them).
The hub side: ``store`` (one storage interface; SQLite and PostgreSQL), ``app`` (``hub serve``: ingest,
fleet API and pages), ``cardstatus`` (a card's status through the device's plan engine), ``fleet``
(the table, riskiest first), ``worker`` (statuses recomputed in the background), ``alerting`` (the
device's alert rules per card plus the fleet rules), ``tokens`` and ``cli``.
"""
