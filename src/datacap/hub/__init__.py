"""The fleet hub: devices push their usage to one hub that shows every card in one place.

``protocol`` is the wire contract both sides share; ``outbox`` and ``sender`` are the device side.
"""
