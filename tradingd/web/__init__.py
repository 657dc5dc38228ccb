"""The dashboard and its HTTP API (issue 15): `create_app` builds the FastAPI app, `server.py` runs it in a thread
beside the daemon (or alone, `tradingd serve`), `live_feed.py` carries the daemon's events to the page.

Everything here reads the state DB through its own read-only connection per request (`state_reader.py`), never the
daemon's `StateStore`: the web server runs in its own thread with its own event loop, and the trading loop never waits
on it. docs/ARCHITECTURE.md §Dashboard and API.
"""
