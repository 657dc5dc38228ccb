from dataclasses import dataclass

import pytest

from agents.strategies.base import param
from agents.strategies.params import ParamsError, build_params, param_specs
from agents.strategies.registry import BUILT_INS
from config.settings import Settings


@dataclass(frozen=True)
class Knobs:
    days: int = param(3, "days in a row")
    ratio: float = param(1.5, "a ratio")
    strict: bool = param(False, "be strict")
    label: str = param("x", "a label")
    window: int = param(20, "shared with the z-score", setting="ZSCORE_WINDOW")

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")


def test_specs_list_name_type_default_description_and_setting() -> None:
    specs = {spec.name: spec.as_dict() for spec in param_specs(Knobs)}
    assert specs["days"] == {
        "name": "days", "type": "int", "default": 3, "setting": "STRATEGY_PARAMS", "description": "days in a row"
    }  # fmt: skip
    assert specs["window"]["setting"] == "ZSCORE_WINDOW"
    assert [spec["type"] for spec in specs.values()] == ["int", "float", "bool", "str", "int"]


def test_values_come_from_settings_and_strategy_params_converted_to_their_types() -> None:
    built = build_params(Knobs, "knobs", {"ZSCORE_WINDOW": 30}, {"days": "5", "ratio": "2", "strict": "yes"})
    assert built == Knobs(days=5, ratio=2.0, strict=True, label="x", window=30)
    assert build_params(Knobs, "knobs", {"ZSCORE_WINDOW": 20}, {}) == Knobs()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dayz": "5"}, "STRATEGY_PARAMS: 'dayz' is not a parameter of knobs (it takes: days, ratio, strict, label)"),
        ({"window": "5"}, "STRATEGY_PARAMS: knobs's window is set by ZSCORE_WINDOW, not STRATEGY_PARAMS"),
        ({"days": "2.5"}, "STRATEGY_PARAMS: days='2.5': invalid literal for int()"),
        ({"ratio": "nan"}, "STRATEGY_PARAMS: ratio='nan': must be a finite number"),
        ({"strict": "maybe"}, "STRATEGY_PARAMS: strict='maybe': not a boolean (true/false)"),
        ({"days": "0"}, "STRATEGY_PARAMS: knobs: days must be at least 1"),
    ],
)
def test_bad_strategy_params_name_the_variable(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ParamsError) as caught:
        build_params(Knobs, "knobs", {"ZSCORE_WINDOW": 20}, overrides)
    assert str(caught.value).startswith(message)


def test_a_declaration_without_defaults_or_with_other_types_is_refused() -> None:
    @dataclass(frozen=True)
    class NoDefault:
        days: int

    @dataclass(frozen=True)
    class Listy:
        days: tuple[int, ...] = param((3,), "not supported")

    with pytest.raises(ParamsError, match="needs a default"):
        param_specs(NoDefault)
    with pytest.raises(ParamsError, match="int, float, bool or str"):
        param_specs(Listy)
    with pytest.raises(ParamsError, match="must be a dataclass"):
        param_specs(dict)


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_built_in_defaults_are_the_settings_defaults(name: str) -> None:
    # The two places a built-in's default lives (its Params, and Settings for `.env`) must agree.
    defaults = Settings()
    for spec in param_specs(BUILT_INS[name].Params):
        assert spec.setting is not None, spec.name
        assert getattr(defaults, spec.setting.lower()) == spec.default, spec.setting
