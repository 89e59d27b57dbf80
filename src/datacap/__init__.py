"""datacap: a data-usage monitor for metered mobile data.

The kernel counts, datacap attributes: interface counters and conntrack do the counting; datacap maps
the bytes to cards, apps, LAN clients and services, stores them in one SQLite file and models the
user's real data plan on top.
"""

__version__ = "0.1.0"
