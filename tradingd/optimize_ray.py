"""`tradingd optimize --ray ADDRESS`: the same trial function (`tradingd.optimize_trial.run_trial`) as a Ray task.

Ray is the optional extra `tradingd[cluster]` (`requirements-cluster.lock`, `make test-cluster`), imported only here
and only when asked for, so nothing else needs it installed. Each task replays the bundled bars from the settings
the driver sends (SIM_DATA_FILE included): every Ray node needs this project installed at the same path, as the
driver's. A task returns an `ObjectRef`, whose `.future()` is the `concurrent.futures.Future` the search waits on.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from tradingd.optimize import OptimizeError, Submit
from tradingd.optimize_trial import TrialResult, TrialSpec, run_trial


def import_ray() -> Any:
    """The `ray` module, or an OptimizeError saying how to install it."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise OptimizeError(
            "--ray: ray is not installed; install the extra: .venv/bin/pip install --require-hashes -r "
            "requirements-cluster.lock (or pip install 'tradingd[cluster]')"
        ) from None


@contextlib.contextmanager
def ray_cluster(address: str | None, **init: Any) -> Iterator[tuple[Submit, int]]:
    """Connect to the Ray cluster at `address` (`auto`, `ray://host:10001`, `host:6379`; None starts a local instance
    with `init`'s options, e.g. num_cpus=2) and yield the submit function and the cluster's CPU count."""
    ray = import_ray()
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **init)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise OptimizeError(f"--ray {address}: cannot connect: {error}") from None
    try:
        remote = ray.remote(num_cpus=1)(run_trial)

        def submit(spec: TrialSpec) -> Future[TrialResult]:
            future: Future[TrialResult] = remote.remote(spec).future()
            return future

        yield submit, max(int(ray.cluster_resources().get("CPU", 1)), 1)
    finally:
        ray.shutdown()
