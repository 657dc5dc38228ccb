"""The deploy files, checked statically: there is no Docker engine here, so the image is never built nor run.

What is checked: the compose file parses and has what README "Deploy" promises; every path the Dockerfile copies
exists and is not excluded by .dockerignore; every command it runs names something that exists (the lock, the
`tradingd` entry point and its `run` command, the health check module and the API path it asks); the systemd unit
parses, names `tradingd run`, and `systemd-analyze verify` accepts it (its ExecStart pointed at this venv's
`tradingd`, which verify requires to exist).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs in the lock; only tests parse YAML
from typer.testing import CliRunner

from config.settings import Settings
from tradingd.cli import app as cli_app
from tradingd.healthcheck import health_url

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
UNIT = ROOT / "deploy" / "tradingd.service"
ENV_EXAMPLE = ROOT / "deploy" / "tradingd.env.example"
STATE_DIR = "/var/lib/tradingd"
STOP_TIMEOUT = "120s"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    return instructions


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list; the shell form split as a shell would."""
    if args.startswith("["):
        return list(yaml.safe_load(args))
    return shlex.split(args)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore excludes `path` (or a folder it is in): its patterns, `**/` for any depth, `!` to
    re-include, the last matching pattern deciding, as Docker does."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        variants = {body, body.removeprefix("**/")} if body.startswith("**/") else {body}
        for candidate in candidates:
            names = {candidate, candidate.split("/")[-1]} if body.startswith("**/") else {candidate}
            if any(fnmatch.fnmatchcase(name, variant) for name in names for variant in variants):
                excluded = not negate
    return excluded


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def unit_entries() -> dict[str, dict[str, list[str]]]:
    """The unit's sections and their keys (a key may repeat: Environment=), as systemd reads them."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{UNIT.name}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{UNIT.name}: {line!r} is not key=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def compose_service() -> dict[str, object]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    service = document["services"]["tradingd"]
    assert isinstance(service, dict)
    return service


# ---- Dockerfile --------------------------------------------------------------------------------------------------


def test_the_image_is_python_311_slim_and_runs_as_a_user() -> None:
    instructions = dockerfile()
    assert instructions[0] == Instruction("FROM", "python:3.11-slim")
    users = [i.args for i in instructions if i.keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1] not in ("root", "0")


def test_every_copied_path_exists_and_is_not_dockerignored() -> None:
    patterns = dockerignore()
    sources = []
    for instruction in dockerfile():
        if instruction.keyword in ("COPY", "ADD"):
            words = [w for w in exec_form(instruction.args) if not w.startswith("--")]
            sources += words[:-1]  # the last one is the destination
    assert "requirements.lock" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
        assert not ignored(source, patterns), f"Dockerfile copies {source}, which .dockerignore excludes"


def test_the_image_copies_every_package_the_project_installs() -> None:
    # A package left out installs "fine" (editable) and fails at its first import inside the container.
    wanted = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    packages = {pattern.rstrip("*") for pattern in wanted["find"]["include"]}
    copied = set()
    for instruction in dockerfile():
        if instruction.keyword == "COPY":
            words = [w for w in exec_form(instruction.args) if not w.startswith("--")]
            copied.update(words[:-1])
    assert packages <= copied, f"the Dockerfile does not copy {sorted(packages - copied)}"


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    patterns = dockerignore()
    for path in (".env", "var", ".venv", ".git", "deploy/tradingd.env", "core/__pycache__", "x.egg-info"):
        assert ignored(path, patterns), path
    for path in ("tradingd/metrics.py", "data/sp500_daily_2013_2018.csv.xz", "requirements.lock"):
        assert not ignored(path, patterns), path


def test_the_install_follows_the_makefile() -> None:
    runs = [exec_form(i.args) for i in dockerfile() if i.keyword == "RUN"]
    pip_runs = [run for run in runs if run[:2] == ["pip", "install"]]
    assert ["pip", "install", "--require-hashes", "-r", "requirements.lock"] in pip_runs
    project = [run for run in pip_runs if "--no-deps" in run]
    assert project, "the project is installed with --no-deps, as the Makefile does"
    assert "--no-build-isolation" in project[0]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r $(LOCK)" in makefile
    assert "--no-deps --no-build-isolation -e ." in makefile


def test_the_entry_point_and_its_command_exist() -> None:
    instructions = dockerfile()
    entrypoint = exec_form(next(i.args for i in instructions if i.keyword == "ENTRYPOINT"))
    command = exec_form(next(i.args for i in instructions if i.keyword == "CMD"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert entrypoint == ["tradingd"]
    assert entrypoint[0] in scripts
    assert command == ["run"]
    result = CliRunner().invoke(cli_app, [*command, "--help"])
    assert result.exit_code == 0, result.output


def test_state_lives_on_the_volume() -> None:
    instructions = dockerfile()
    env = " ".join(i.args for i in instructions if i.keyword == "ENV")
    assert f"DATA_DIR={STATE_DIR}" in env
    assert f"CANDIDATES_FILE={STATE_DIR}/" in env  # the daily scan writes it: it must land on the volume
    volumes = [exec_form(i.args) for i in instructions if i.keyword == "VOLUME"]
    assert volumes == [[STATE_DIR]]
    assert any(f"-o tradingd -g tradingd -m 0700 {STATE_DIR}" in i.args for i in instructions if i.keyword == "RUN")


def test_the_health_check_asks_the_apis_health_endpoint() -> None:
    instructions = dockerfile()
    healthcheck = next(i.args for i in instructions if i.keyword == "HEALTHCHECK")
    command = exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert command == ["python", "-m", "tradingd.healthcheck"]
    assert (ROOT / "tradingd" / "healthcheck.py").is_file()
    assert health_url({}) == "http://127.0.0.1:8765/api/health"
    assert health_url({"DASHBOARD_PORT": "9000"}) == "http://127.0.0.1:9000/api/health"
    web = ROOT / "tradingd" / "web"
    if web.is_dir():  # once the API is in the tree, the path asked must be one it serves
        assert any('"/api/health"' in f.read_text(encoding="utf-8") for f in web.rglob("*.py"))
    assert [i.args for i in instructions if i.keyword == "EXPOSE"] == ["8765"]
    assert [i.args for i in instructions if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]


# ---- compose.yaml ------------------------------------------------------------------------------------------------


def test_compose_parses_and_has_the_promised_keys() -> None:
    service = compose_service()
    for key in ("build", "env_file", "environment", "ports", "volumes", "restart", "healthcheck", "stop_grace_period"):
        assert key in service, key
    assert service["build"] == "."
    assert service["restart"] in ("unless-stopped", "always", "on-failure")
    assert service["stop_signal"] == "SIGTERM"
    assert service["stop_grace_period"] == STOP_TIMEOUT
    env_files = service["env_file"]
    assert isinstance(env_files, list)
    assert [entry["path"] for entry in env_files] == ["deploy/tradingd.env"]
    assert "deploy/tradingd.env" in (ROOT / ".gitignore").read_text(encoding="utf-8")


def test_compose_publishes_the_dashboard_on_loopback_only() -> None:
    service = compose_service()
    ports = service["ports"]
    assert isinstance(ports, list)
    assert ports == ["127.0.0.1:8765:8765"]
    environment = service["environment"]
    assert isinstance(environment, dict)
    # Inside the container the dashboard listens on every interface (the published port reaches it), so it needs
    # DASHBOARD_TOKEN, which comes from the env file, never from compose.yaml (it is committed).
    assert environment["DASHBOARD_HOST"] == "0.0.0.0"
    assert environment["DASHBOARD_ENABLED"] == "true"
    assert "DASHBOARD_TOKEN" not in environment


def test_compose_keeps_the_state_on_a_named_volume() -> None:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    volumes = compose_service()["volumes"]
    assert isinstance(volumes, list)
    name, target = volumes[0].split(":")
    assert target == STATE_DIR
    assert name in document["volumes"]  # named (declared), not a bind mount


def test_compose_health_check_is_the_images() -> None:
    healthcheck = compose_service()["healthcheck"]
    assert isinstance(healthcheck, dict)
    assert healthcheck["test"] == ["CMD", "python", "-m", "tradingd.healthcheck"]


# ---- systemd unit ------------------------------------------------------------------------------------------------


def test_the_unit_runs_tradingd_run_as_its_own_user() -> None:
    unit = unit_entries()
    service = unit["Service"]
    assert service["ExecStart"] == ["/opt/tradingd/.venv/bin/tradingd run"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]  # bad input: a restart would not fix it
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["TimeoutStopSec"] == [STOP_TIMEOUT]  # the same grace as compose's stop_grace_period
    assert service["EnvironmentFile"] == ["/etc/tradingd/tradingd.env"]
    assert service["User"] not in (["root"], ["0"])
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_hardened_unit_can_still_write_its_state() -> None:
    service = unit_entries()["Service"]
    assert service["ProtectSystem"] == ["strict"]  # everything read-only but what follows
    assert service["StateDirectory"] == ["tradingd"]  # /var/lib/tradingd, writable, owned by the user
    environment = dict(entry.split("=", 1) for entry in service["Environment"])
    assert environment["DATA_DIR"] == STATE_DIR
    assert environment["CANDIDATES_FILE"].startswith(f"{STATE_DIR}/")
    assert environment["MPLCONFIGDIR"].startswith("/var/cache/tradingd/")  # CacheDirectory=tradingd
    assert service["CacheDirectory"] == ["tradingd"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists: point it at this venv's `tradingd` in a copy of the unit.
    tradingd = Path(sys.executable).parent / "tradingd"
    assert tradingd.is_file(), f"{tradingd} missing: run `make install`"
    text = UNIT.read_text(encoding="utf-8").replace("/opt/tradingd/.venv/bin/tradingd", str(tradingd))
    assert str(tradingd) in text
    copy = tmp_path / "tradingd.service"
    copy.write_text(text, encoding="utf-8")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    # verify exits 0 on an unknown key or a bad value (it only warns), so its output is read too.
    about_ours = [line for line in output.splitlines() if "tradingd.service" in line]
    assert result.returncode == 0, output
    assert about_ours == [], output


# ---- the env example ---------------------------------------------------------------------------------------------

OTHER_PARTS = ("DASHBOARD_", "NOTIFY_")  # the dashboard's and the notifications' settings (README)


def test_the_env_example_names_only_settings() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    set_keys, commented_keys = [], []
    for raw in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if match := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            set_keys.append(match.group(1))
            # Unquoted, no spaces: systemd's EnvironmentFile= and compose's env_file read such a line alike.
            assert " " not in match.group(2), line
            assert '"' not in match.group(2), line
        elif match := re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.*)", line):
            commented_keys.append(match.group(1))
    assert "TRADING_MODE" in set_keys
    for key in set_keys:
        assert key in fields, f"{key} is not a setting"
    for key in commented_keys:
        assert key in fields or key.startswith(OTHER_PARTS), f"{key} is not a setting"
    assert "DASHBOARD_TOKEN" in commented_keys
