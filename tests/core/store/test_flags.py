"""Flags: the named conditions that outlive the process (kill switch, breakers, last scan date)."""

from __future__ import annotations

from core.store import StateStore


def test_flags_set_overwrite_and_clear(store: StateStore) -> None:
    assert store.get_flag("halted") is None
    store.set_flag("halted", "manual")
    store.set_flag("halted", "daily_loss")
    store.set_flag("last_scan_date", "2018-02-05")
    assert store.get_flag("halted") == "daily_loss"

    store.clear_flag("halted")
    store.clear_flag("never_set")
    assert store.get_flag("halted") is None
    assert store.summary()["flags"] == {"last_scan_date": "2018-02-05"}
