"""Errors shared by layers that cannot import each other (the loaders in `core.bars` sit below `core.app`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings


class SetupError(Exception):
    """The pipeline cannot be built (bad data file, unknown symbols, …): exit code 2."""


def missing_file_message(settings: Settings, name: str, path: Path) -> str:
    """Why a sim data file is unusable, worded by who chose it: advice to set the variable only if the user did not."""
    reason = "not a regular file" if path.exists() else "no such file"
    if name.lower() in settings.model_fields_set:
        return f"{name}={path}: {reason}"
    return f"{name}: {path} (the default): {reason}; set {name} (a wheel install has no data/)"
