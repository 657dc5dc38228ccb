# tradingd in a container: `tradingd run` (paper/live per the environment), state on a volume, dashboard on 8765.
# Built and run with compose.yaml (README "Deploy"). Checked statically only (tests/deploy/test_deploy_files.py):
# no Docker engine was available where this project is developed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A fixed uid so the named volume's owner stays the same across rebuilds.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tradingd --no-create-home \
        --shell /usr/sbin/nologin tradingd \
    && install -d -o tradingd -g tradingd -m 0700 /var/lib/tradingd

WORKDIR /opt/tradingd

# As the Makefile does: exactly the tested versions, hashes checked (the build backend included), in their own layer
# so a code change does not reinstall them; then the project itself with no dependency resolution and no build
# isolation, so nothing unpinned is downloaded. Editable: the bundled data is found beside the packages (config/).
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY tradingd ./tradingd
COPY agents ./agents
COPY analytics ./analytics
COPY intelligence ./intelligence
COPY core ./core
COPY config ./config
COPY scripts ./scripts
COPY data ./data
RUN pip install --no-deps --no-build-isolation -e .

# Everything the daemon writes goes to the volume (README "Deploy": where the state lives).
ENV DATA_DIR=/var/lib/tradingd \
    CANDIDATES_FILE=/var/lib/tradingd/candidates.json \
    HOME=/var/lib/tradingd \
    MPLCONFIGDIR=/tmp/matplotlib \
    LOG_FORMAT=json
VOLUME ["/var/lib/tradingd"]
USER tradingd

# The dashboard and API (DASHBOARD_ENABLED=true). Reachable from outside the container only when it listens on
# 0.0.0.0 (DASHBOARD_HOST), which requires DASHBOARD_TOKEN; compose.yaml publishes it on the host's loopback only.
EXPOSE 8765
# SIGTERM finishes the iteration in progress and syncs; give it the unit's 120 s (`docker stop -t 120`,
# stop_grace_period in compose.yaml).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "tradingd.healthcheck"]

ENTRYPOINT ["tradingd"]
CMD ["run"]
