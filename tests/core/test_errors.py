from pathlib import Path

import pytest

from config.settings import Settings
from core.errors import missing_file_message


def test_a_file_the_user_set_is_named_as_set_without_advice_to_set_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    settings = Settings(trading_mode="sim", sim_data_file=path)
    assert missing_file_message(settings, "SIM_DATA_FILE", path) == f"SIM_DATA_FILE={path}: no such file"
    assert missing_file_message(settings, "SIM_DATA_FILE", tmp_path) == f"SIM_DATA_FILE={tmp_path}: not a regular file"


def test_the_default_file_missing_advises_setting_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SIM_UNIVERSE_FILE", raising=False)
    settings = Settings(trading_mode="sim")
    path = tmp_path / "gone.csv"
    message = missing_file_message(settings, "SIM_UNIVERSE_FILE", path)
    assert message == (
        f"SIM_UNIVERSE_FILE: {path} (the default): no such file; set SIM_UNIVERSE_FILE (a wheel install has no data/)"
    )
