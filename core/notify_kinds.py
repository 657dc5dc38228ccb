"""The kinds of notification `NOTIFY_EVENTS` selects (README "Notifications").

Here, in core, because the settings (config) validate the variable against them and the notifier (tradingd) sends
them: names shared by layers live in the lowest one.
"""

from __future__ import annotations

import enum


class NotifyKind(enum.StrEnum):
    FILL = "fill"  # every fill; more than 5 in one iteration come as one message listing them all
    REJECTED = "rejected"  # an order the broker (or execution) refused
    BREAKER = "breaker"  # a circuit breaker tripped, and trading cleared again after one
    KILL_SWITCH = "kill_switch"  # halted or reduce-only by `tradingd halt` / the kill-switch file, and lifted
    DAEMON = "daemon"  # the daemon started or stopped
    UNCLEAN_RESTART = "unclean_restart"  # the start after a daemon of this state was killed or crashed
    BROKER_DOWN = "broker_down"  # the broker unreachable for NOTIFY_BROKER_DOWN_MINUTES, and back
    DIGEST = "digest"  # after each session: the day's P&L, positions, the next candidates, the equity chart


ALL_KINDS: tuple[NotifyKind, ...] = tuple(NotifyKind)
