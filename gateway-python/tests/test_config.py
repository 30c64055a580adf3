# Configuration: defaults, strict parsing with one-line exit 2, prod rules, masking, and the
# README env table kept equal to Settings.
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import Settings, load_settings, mask_url

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_match_env_md() -> None:
    s = load_settings({})
    assert s.port == 8000
    assert s.pricing_url == "http://127.0.0.1:8001"
    assert s.inventory_url == "http://127.0.0.1:8002"
    assert s.redis_url is None
    assert (s.upstream_timeout_ms, s.upstream_retries, s.request_deadline_ms) == (1000, 1, 2500)
    assert s.max_body_bytes == 65536
    assert s.polyshop_env == "dev"
    assert s.log_level == "info"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "80a"),
        ("PORT", "0"),
        ("UPSTREAM_TIMEOUT_MS", "10ms"),
        ("UPSTREAM_TIMEOUT_MS", "10.0"),
        ("UPSTREAM_RETRIES", "6"),
        ("REQUEST_DEADLINE_MS", "-1"),
        ("LOG_LEVEL", "loud"),
        ("POLYSHOP_ENV", "staging"),
        ("FAULT_ERROR_RATE", "1.5"),
        ("FAULT_ERROR_RATE", "x"),
        ("PRICING_URL", "not a url"),
        ("PRICING_URL", "https://pricing:8001"),
        ("MAX_BODY_BYTES", "1e3"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("ADMIN_TOKEN", "two\nlines"),
    ],
)
def test_bad_value_exits_2_naming_the_variable(
    name: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        load_settings({name: value})
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert name in err


def test_prod_refuses_fault_knobs_and_missing_admin_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        load_settings({"POLYSHOP_ENV": "prod"})
    assert "ADMIN_TOKEN" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_settings({"POLYSHOP_ENV": "prod", "ADMIN_TOKEN": "t", "FAULT_DELAY_MS": "5"})
    assert "FAULT_DELAY_MS" in capsys.readouterr().err
    assert load_settings({"POLYSHOP_ENV": "prod", "ADMIN_TOKEN": "t"}).polyshop_env == "prod"


def test_secrets_are_masked() -> None:
    s = load_settings({"ADMIN_TOKEN": "s3cret", "REDIS_URL": "redis://:pw@host:6379/0"})
    masked = s.masked()
    assert masked["admin_token"] == "***"
    assert masked["redis_url"] == "redis://:***@host:6379/0"
    assert "s3cret" not in str(masked)
    assert "pw@" not in str(masked)
    assert mask_url("redis://host:6379/0") == "redis://host:6379/0"


def test_process_exits_2_on_bad_config() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env={"PORT": "eighty", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "PORT" in proc.stderr


def _readme_table() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in README.read_text().splitlines():
        m = re.match(r"^\|\s*`([A-Z_]+)`\s*\|\s*(.*?)\s*\|", line)
        if m:
            rows[m[1]] = m[2].strip("`")
    return rows


def test_readme_env_table_equals_settings() -> None:
    rows = _readme_table()
    fields = Settings.model_fields
    assert set(rows) == {name.upper() for name in fields}
    for name, info in fields.items():
        if name == "instance_id":
            assert rows[name.upper()] == "hostname-pid"
            continue
        default = info.get_default(call_default_factory=True, validated_data={"port": 8000})
        expected = "unset" if default in (None, []) else str(default)
        assert rows[name.upper()] == expected, name
