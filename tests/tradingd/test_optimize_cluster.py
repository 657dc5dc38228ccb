"""The same `GridSampler` grid as `test_optimize.py`, run as Ray tasks on a local Ray instance: identical per-trial
results to the run in one process. Marker `cluster`: `make test-cluster` installs Ray (the optional extra `cluster`,
requirements-cluster.lock) and runs only these; `make test` deselects them (a large install, start-up timeouts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tradingd.test_optimize import by_params, data_file, grid_inputs, grid_sampler, one_process
from tradingd.optimize import SearchResult, search
from tradingd.optimize_ray import ray_cluster

pytestmark = pytest.mark.cluster
__all__ = ["data_file", "one_process"]  # the fixtures, shared with the in-process run


def test_the_grid_on_a_local_ray_instance_gives_the_same_trials_as_in_one_process(
    one_process: SearchResult, data_file: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="make test-cluster installs the extra `cluster`")
    inputs = grid_inputs(data_file, tmp_path / "var")
    with ray_cluster(None, num_cpus=2) as (submit, cpus):
        assert cpus == 2
        on_ray = search(**inputs, objective="sharpe", trials=4, submit=submit, workers=cpus, sampler=grid_sampler())
    assert len(by_params(on_ray)) == 4
    for key, trial in by_params(one_process).items():
        other = by_params(on_ray)[key]
        assert (other.in_sample, other.out_of_sample, other.windows) == (
            trial.in_sample,
            trial.out_of_sample,
            trial.windows,
        )
