"""A strategy's parameters: read from its dataclass, listed for people, built from settings.

Each field of a strategy's `Params` dataclass is one parameter (name, type, default, description; see
`agents.strategies.base.param`). A built-in's parameter names the setting it is read from (`ZSCORE_WINDOW`, validated
by `Settings` like every variable); any other is set through `STRATEGY_PARAMS=name=value,...`, converted here to the
field's type. Bad input is a `ParamsError` whose message starts with the variable to fix.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SUPPORTED_TYPES: tuple[type, ...] = (int, float, bool, str)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ParamsError(Exception):
    """A parameter declaration or value that cannot be used; the message names the variable or the class."""


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    type: type
    default: Any
    description: str
    setting: str | None  # the dedicated variable; None: STRATEGY_PARAMS

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "setting": self.setting or "STRATEGY_PARAMS",
            "description": self.description,
        }


def param_specs(params_type: type) -> tuple[ParamSpec, ...]:
    """The parameters `params_type` declares, or a ParamsError saying what is wrong with the declaration."""
    if not (isinstance(params_type, type) and dataclasses.is_dataclass(params_type)):
        raise ParamsError(f"Params must be a dataclass, got {params_type!r}")
    try:
        hints = typing.get_type_hints(params_type)
    except (NameError, TypeError) as error:
        raise ParamsError(f"{params_type.__name__}: unresolvable annotation ({error})") from None
    specs = []
    for item in dataclasses.fields(params_type):
        kind = hints.get(item.name)
        if kind not in SUPPORTED_TYPES:
            raise ParamsError(f"{params_type.__name__}.{item.name}: type must be int, float, bool or str, got {kind}")
        if item.default is dataclasses.MISSING:
            raise ParamsError(f"{params_type.__name__}.{item.name}: every parameter needs a default")
        specs.append(
            ParamSpec(
                name=item.name,
                type=kind,
                default=item.default,
                description=str(item.metadata.get("description", "")),
                setting=item.metadata.get("setting"),
            )
        )
    return tuple(specs)


def _convert(spec: ParamSpec, text: str) -> Any:
    value = text.strip()
    if spec.type is bool:
        if value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ValueError("not a boolean (true/false)")
    if spec.type is int:
        return int(value)
    if spec.type is float:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    return value


def build_params(
    params_type: type, strategy: str, settings_values: Mapping[str, Any], overrides: Mapping[str, str]
) -> Any:
    """An instance of `params_type`: built-in parameters from their settings, the rest from `overrides`.

    `settings_values` maps a setting's name (upper case) to its validated value; `overrides` is `STRATEGY_PARAMS`.
    A parameter left out keeps its default.
    """
    specs = {spec.name: spec for spec in param_specs(params_type)}
    values: dict[str, Any] = {}
    for spec in specs.values():
        if spec.setting is not None:
            values[spec.name] = settings_values[spec.setting]
    for name, text in overrides.items():
        given = specs.get(name)
        if given is None:
            known = ", ".join(n for n, s in specs.items() if s.setting is None) or "none"
            raise ParamsError(f"STRATEGY_PARAMS: {name!r} is not a parameter of {strategy} (it takes: {known})")
        if given.setting is not None:
            raise ParamsError(f"STRATEGY_PARAMS: {strategy}'s {name} is set by {given.setting}, not STRATEGY_PARAMS")
        try:
            values[name] = _convert(given, text)
        except ValueError as error:
            raise ParamsError(f"STRATEGY_PARAMS: {name}={text!r}: {error}") from None
    try:
        return params_type(**values)
    except (TypeError, ValueError) as error:  # the dataclass's own checks (__post_init__)
        raise ParamsError(f"STRATEGY_PARAMS: {strategy}: {error}") from None
