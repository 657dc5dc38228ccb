"""Strategy plug-ins installed without pip: a module and a `<name>.dist-info` put on `sys.path`.

`importlib.metadata` finds a distribution by its `.dist-info` folder on any `sys.path` entry, exactly as it finds one
pip installed into site-packages, so the registry's entry-point discovery runs unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from agents.strategies.registry import ENTRY_POINT_GROUP


def install_plugin(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    dist: str,
    entry_points: Mapping[str, str],
    modules: Mapping[str, str],
) -> None:
    """Write `modules` (file name → source) and the distribution `dist` declaring `entry_points` (name → object
    reference) in `root`, and put `root` on `sys.path` for the test. Module names must be unique per test run:
    an imported module stays in `sys.modules`."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / name).write_text(source)
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{name} = {value}" for name, value in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(root))
