"""Settings: defaults, environment variables and a TOML file."""

from __future__ import annotations

import pytest

from reelforge.config import Settings


def test_defaults_follow_the_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("data/reelforge.db")
    assert s.storage_url.endswith("data/media") and s.is_embedded_broker
    assert s.retention_days == 14 and s.allow_http_webhooks is False
    p = s.plans
    assert (p["starter"].requests_per_minute, p["starter"].requests_per_day,
            p["starter"].concurrent_jobs) == (10, 50, 2)
    assert (p["growth"].requests_per_minute, p["growth"].requests_per_day,
            p["growth"].concurrent_jobs) == (30, 300, 5)
    assert (p["enterprise"].requests_per_minute, p["enterprise"].requests_per_day,
            p["enterprise"].concurrent_jobs) == (100, 2000, 20)


def test_env_and_toml(tmp_path, monkeypatch):
    toml = tmp_path / "reelforge.toml"
    toml.write_text('retention_days = 3\n[plans.tiny]\nrequests_per_minute = 1\n'
                    'requests_per_day = 2\nconcurrent_jobs = 1\nmonthly_credits = 5\n'
                    '[costs]\nper_second = 2\n')
    monkeypatch.setenv("REELFORGE_CONFIG", str(toml))
    monkeypatch.setenv("REELFORGE_ALLOW_HTTP_WEBHOOKS", "true")
    monkeypatch.setenv("REELFORGE_LIMITS__MAX_UPLOAD_BYTES", "1000")
    s = Settings()
    assert s.retention_days == 3 and s.allow_http_webhooks is True
    assert s.plans["tiny"].monthly_credits == 5 and s.costs.per_second == 2
    assert s.limits.max_upload_bytes == 1000


def test_unknown_default_plan_names_the_fix():
    with pytest.raises(ValueError, match="add it under"):
        Settings(default_plan="gold")
