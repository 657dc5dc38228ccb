"""The daemon's durable state: one SQLite database (WAL) in DATA_DIR.

What must survive a restart lives here: orders (keyed by client order id, so a restart never places one twice),
fills (keyed by execution id, so a replayed stream is harmless), positions, daily equity marks (start-of-day equity
and the all-time peak that the daily-loss and drawdown limits are measured from), a journal of published events and
a few flags (kill switch, circuit breakers, last scan date).

The daemon writes once per iteration inside `transaction()`; outside a transaction every write commits on its own.
Money and quantities are stored as TEXT so a `Decimal` comes back exactly as it went in; datetimes as fixed-width
ISO-8601 UTC TEXT, so string order is time order (`codec.py`). One `StateStore` has one owner: it is not meant to be
shared by concurrent threads. Other processes (`tradingd status`, `tradingd halt`) may open the same file at the same
time.

One module per concern: `schema.py` (tables, migrations, opening and checking a file), `orders.py` (orders and
fills), `positions.py`, `equity.py`, `journal.py` (with its retention pruning), `flags.py` and `high_water.py` (the
trailing stops' high-water marks); `state_store.py` composes them into the `StateStore` everyone uses.
"""

from core.store.equity import EquityMark
from core.store.high_water import HighWaterMark
from core.store.orders import OrderRecord
from core.store.schema import SCHEMA_VERSION, StateStoreError, check_state_db
from core.store.state_store import StateStore

__all__ = [
    "SCHEMA_VERSION",
    "EquityMark",
    "HighWaterMark",
    "OrderRecord",
    "StateStore",
    "StateStoreError",
    "check_state_db",
]
