"""NOTIFY_* settings: the kinds, bad values exit 2 with one line naming the variable (never the URL), the URLs are
masked wherever text is masked, and the local commands never import apprise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from config.settings import Settings
from core.notify_kinds import ALL_KINDS, NotifyKind
from core.redact import clear_secrets, redact, register_settings
from tradingd.cli import app

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
runner = CliRunner()


def test_the_kinds_default_to_all_and_parse_from_a_list() -> None:
    assert Settings().notify_events == ALL_KINDS
    chosen = Settings(notify_events="Fill, breaker,fill")  # type: ignore[arg-type]
    assert chosen.notify_events == (NotifyKind.FILL, NotifyKind.BREAKER)
    assert Settings(notify_events="all").notify_events == ALL_KINDS  # type: ignore[arg-type]


def _replay(tmp_path: Path, **env: str) -> tuple[int, str]:
    base = {"DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING", "NOTIFY_IN_SIM": "true"}
    result = runner.invoke(app, ["run", "--mode", "sim", "--iterations", "1"], env={**base, **env})
    return result.exit_code, result.output


def test_an_unknown_kind_exits_2_naming_the_variable(tmp_path: Path) -> None:
    code, output = _replay(tmp_path, NOTIFY_EVENTS="fill,fills")
    assert code == 2
    assert "NOTIFY_EVENTS: unknown kind 'fills'" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("url", [f"nonsense://{TOKEN}", "tgram://short-bad-token", "just-text-no-scheme"])
def test_a_url_apprise_cannot_use_exits_2_without_showing_it(tmp_path: Path, url: str) -> None:
    code, output = _replay(tmp_path, NOTIFY_URLS=f"json://127.0.0.1:9/ok,{url}")
    assert code == 2
    (line,) = output.strip().splitlines()
    assert line.startswith("error: NOTIFY_URLS: entry 2 (scheme ")
    secret = url.partition("://")[2] or url
    assert secret not in output
    log = (tmp_path / "sim" / "logs" / "tradingd.log").read_text()
    assert secret not in log


def test_the_urls_and_their_tokens_are_masked_in_any_text() -> None:
    clear_secrets()
    try:
        register_settings(Settings(notify_urls=SecretStr(f"tgram://{TOKEN}/-1001, json://127.0.0.1:8080/hook")))
        assert redact(f"posting to tgram://{TOKEN}/-1001") == "posting to ***"
        assert redact(f"bot {TOKEN.split(':')[1]} refused") == "bot *** refused"
        assert redact("json://127.0.0.1:8080/hook") == "***"
        assert redact("127.0.0.1 and hook stay readable") == "127.0.0.1 and hook stay readable"
    finally:
        clear_secrets()


PROBE = """
import json, sys
sys.argv = ["tradingd", *sys.argv[1:]]
from tradingd.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(n for n in ("apprise", "tenacity", "tradingd.notify.sender") if n in sys.modules)),
      file=sys.stderr)
"""


def test_status_with_notify_urls_set_never_imports_apprise(tmp_path: Path) -> None:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("ALPACA_", "TRADING_MODE", "NOTIFY_"))}
    env = {**keep, "DATA_DIR": str(tmp_path), "NOTIFY_URLS": f"tgram://{TOKEN}/-1", "LOG_LEVEL": "WARNING"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, "status"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    assert TOKEN not in result.stdout + result.stderr
