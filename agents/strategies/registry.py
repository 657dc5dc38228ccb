"""Which strategies exist and which one runs: the built-ins plus plug-ins found through entry points.

A plug-in is any installed distribution with an entry point in the group `tradingd.strategies`. The entry point's
name is the strategy's name (what `STRATEGY_NAME` selects); it loads a strategy class or factory that has a `Params`
dataclass (`agents.strategies.base.param` fields) and, called with a `Params` instance, returns a `Strategy`.
Optional attributes: `description` (else the docstring's first line) and `order_tag`, the short name written into
client order ids (else the strategy's name), at most 12 of `a-z 0-9 _`: longer ids could not be recognised as the
daemon's own after a state loss (`agents/execution.py::is_our_client_order_id`).

Plug-ins are imported only when selected or listed, so a broken one stops only the commands that need it, and every
failure is a `StrategyError` (exit 2, one line) naming the plug-in, never a traceback.

`select` takes the selection as plain values (the name, `STRATEGY_PARAMS`, and a lookup of a setting by its variable
name): the wiring reads them from `Settings` (`tradingd/configs.py::select_strategy`), so the agents never import
the config package.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import structlog

from agents.strategies.base import Strategy
from agents.strategies.params import ParamsError, ParamSpec, build_params, param_specs
from agents.strategies.rvol_breakout import RvolBreakout
from agents.strategies.zscore_mean_reversion import ZScoreMeanReversion
from core.errors import SetupError
from core.order_ids import RESERVED_ORDER_TAGS

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "tradingd.strategies"
BUILT_INS: dict[str, Callable[..., Any]] = {
    "zscore_mean_reversion": ZScoreMeanReversion,
    "rvol_breakout": RvolBreakout,
}
# Names that used to select a strategy: still accepted, with a warning. `zscore_mr` was STRATEGY_NAME's default when
# it only labelled order ids.
ALIASES = {"zscore_mr": "zscore_mean_reversion"}
ORDER_TAG = re.compile(r"[a-z0-9_]{1,12}")
_WARNED: set[str] = set()  # aliases already reported by this process
# A setting's validated value by its variable name (`ZSCORE_WINDOW`); KeyError when no setting has that name.
SettingLookup = Callable[[str], Any]


class StrategyError(SetupError):
    """No usable strategy by that name: unknown, ambiguous, or a plug-in that fails to load or start."""


@dataclass(frozen=True, slots=True)
class StrategyInfo:
    """A registered strategy, loaded but not built."""

    name: str
    source: str  # "built-in", or the plug-in's distribution and entry point
    factory: Callable[..., Any]
    params_type: type
    params: tuple[ParamSpec, ...]
    description: str
    order_tag: str
    ranks_entries: bool  # has `entry_score`, used by the daily scan

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "order_tag": self.order_tag,
            "description": self.description,
            "entry_score": self.ranks_entries,
            "params": [spec.as_dict() for spec in self.params],
        }


@dataclass(frozen=True, slots=True)
class SelectedStrategy:
    """The strategy `STRATEGY_NAME` chose, built with its parameters."""

    info: StrategyInfo
    params: Any
    strategy: Strategy

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def order_tag(self) -> str:
        return self.info.order_tag


def _plugins() -> dict[str, list[metadata.EntryPoint]]:
    found: dict[str, list[metadata.EntryPoint]] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry_point.name, []).append(entry_point)
    return found


def _origin(entry_point: metadata.EntryPoint) -> str:
    dist = entry_point.dist
    owner = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return f"plug-in from {owner} ({entry_point.name} = {entry_point.value})"


def known_names() -> list[str]:
    """Every strategy name that can be selected (aliases left out), without importing any plug-in."""
    return sorted(set(BUILT_INS) | set(_plugins()))


def _describe(factory: Callable[..., Any]) -> str:
    text = getattr(factory, "description", None) or (factory.__doc__ or "").strip()
    return str(text).splitlines()[0] if text else ""


def _info(name: str, factory: Any, source: str) -> StrategyInfo:
    where = f"strategy {name!r} ({source})"
    if not callable(factory):
        raise StrategyError(f"{where}: {factory!r} is not a strategy class or factory")
    params_type = getattr(factory, "Params", None)
    if params_type is None:
        raise StrategyError(f"{where}: it has no Params dataclass (see README 'Add your own strategy')")
    try:
        specs = param_specs(params_type)
    except ParamsError as error:
        raise StrategyError(f"{where}: {error}") from None
    tag = getattr(factory, "order_tag", None) or name
    if not isinstance(tag, str) or not ORDER_TAG.fullmatch(tag):
        raise StrategyError(
            f"{where}: order tag {tag!r} must be 1 to 12 of a-z, 0-9 and _ (it goes into client order ids);"
            " give the class a shorter `order_tag`"
        )
    if tag in RESERVED_ORDER_TAGS:
        raise StrategyError(
            f"{where}: order tag {tag!r} is reserved for the daemon's own exits"
            f" ({', '.join(sorted(RESERVED_ORDER_TAGS))});"
            " give the class another `order_tag`"
        )
    return StrategyInfo(
        name=name,
        source=source,
        factory=factory,
        params_type=params_type,
        params=specs,
        description=_describe(factory),
        order_tag=tag,
        ranks_entries=callable(getattr(factory, "entry_score", None)),
    )


def load(name: str) -> StrategyInfo:
    """The strategy registered as `name` (an alias resolved), importing it if it is a plug-in."""
    found = _plugins()
    canonical = ALIASES.get(name, name)
    # A plug-in named like a built-in (or an alias of one) would be shadowed without a word: refuse it instead.
    plugins = found.get(canonical, []) + (found.get(name, []) if name != canonical else [])
    name = canonical
    if name in BUILT_INS:
        if plugins:
            raise StrategyError(
                f"strategy {name!r}: {_origin(plugins[0])} takes the name of a built-in; rename its entry point"
            )
        return _info(name, BUILT_INS[name], "built-in")
    if not plugins:
        raise StrategyError(f"unknown strategy {name!r}; known: {', '.join(known_names())}")
    if len(plugins) > 1:
        raise StrategyError(f"strategy {name!r} is registered twice: {'; '.join(_origin(ep) for ep in plugins)}")
    entry_point = plugins[0]
    try:
        factory = entry_point.load()
    except Exception as error:  # any failure of someone else's import is reported by name, not as a traceback
        raise StrategyError(
            f"strategy {name!r} ({_origin(entry_point)}) cannot be loaded: {type(error).__name__}: {error}"
        ) from None
    return _info(name, factory, _origin(entry_point))


def catalog() -> list[StrategyInfo]:
    """Every registered strategy, loaded (for `tradingd strategies`)."""
    return [load(name) for name in known_names()]


def _setting_values(info: StrategyInfo, setting: SettingLookup) -> dict[str, Any]:
    values = {}
    for spec in info.params:
        if spec.setting is None:
            continue
        try:
            values[spec.setting] = setting(spec.setting)
        except KeyError:
            raise StrategyError(
                f"strategy {info.name!r}: parameter {spec.name} names no setting ({spec.setting})"
            ) from None
    return values


def select(chosen: str, overrides: Mapping[str, str], setting: SettingLookup) -> SelectedStrategy:
    """The strategy `chosen` (STRATEGY_NAME) names, its parameters read through `setting` and from `overrides`
    (STRATEGY_PARAMS), or a StrategyError naming what to fix."""
    try:
        info = load(chosen)
        values = _setting_values(info, setting)
    except StrategyError as error:
        raise StrategyError(f"STRATEGY_NAME: {error}") from None
    try:
        params = build_params(info.params_type, info.name, values, overrides)
    except ParamsError as error:
        raise StrategyError(str(error)) from None
    if chosen in ALIASES and chosen not in _WARNED:
        _WARNED.add(chosen)
        log.warning("strategy_name_deprecated", strategy_name=chosen, use=info.name, note="same strategy, same ids")
    where = f"STRATEGY_NAME: strategy {info.name!r} ({info.source})"
    try:
        strategy = info.factory(params)
    except Exception as error:  # a plug-in's constructor is someone else's code too
        raise StrategyError(f"{where} failed to start: {type(error).__name__}: {error}") from None
    if not isinstance(strategy, Strategy):
        raise StrategyError(f"{where} built {strategy!r}, which has no `lookback` and `signals()`")
    lookback = strategy.lookback
    if not isinstance(lookback, int) or isinstance(lookback, bool) or lookback < 1:
        raise StrategyError(f"{where}: lookback must be a whole number of bars >= 1, got {lookback!r}")
    return SelectedStrategy(info=info, params=params, strategy=strategy)
