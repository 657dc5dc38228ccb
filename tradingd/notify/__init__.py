"""Notifications through apprise (README "Notifications", docs/ARCHITECTURE.md §Notifications).

`observer.py` turns bus events into `Notification`s and only enqueues them; `sender.py` drains the queue on its own
thread, rate-limited, retrying a failing channel with backoff and never raising; `channels.py` is the one importer
of apprise; `digest.py` builds the daily digest; `service.py` wires them to a daemon.
"""
