from pathlib import Path

import pytest

from marketplace.config import ConfigError, load

PROD = {
    "MARKET_PROFILE": "production",
    "SECRET_KEY": "x" * 64,
    "DATABASE_URL": "postgres://u:p@db:5432/market",
    "CELERY_BROKER_URL": "redis://redis:6379/0",
    "AWS_STORAGE_BUCKET_NAME": "bucket",
    "ALLOWED_HOSTS": "market.example.com",
}


def test_embedded_defaults_need_no_server():
    config = load({})
    assert config.database_url.startswith("sqlite:///")
    assert config.broker_url == "filesystem://"
    assert not config.uses_s3
    assert config.quality_device == "auto"
    assert config.profile == "dev"


def test_production_profile_accepts_complete_environment():
    config = load(PROD)
    assert config.uses_s3 and not config.debug and config.secure_ssl_redirect
    assert config.cache_url == "redis://redis:6379/1"


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DATABASE_URL": "sqlite:///x.db"}, "DATABASE_URL"),
        ({"AWS_STORAGE_BUCKET_NAME": ""}, "AWS_STORAGE_BUCKET_NAME"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
    ],
)
def test_production_refuses_missing_values(override, variable):
    with pytest.raises(ConfigError, match=variable):
        load(PROD | override)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MARKET_PROFILE": "staging"}, "MARKET_PROFILE"),
        ({"QUALITY_DEVICE": "tpu"}, "QUALITY_DEVICE"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"CELERY_BROKER_URL": "kafka://x"}, "CELERY_BROKER_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"TOKEN_TTL_HOURS": "soon"}, "TOKEN_TTL_HOURS"),
        ({"TOKEN_TTL_HOURS": "0"}, "TOKEN_TTL_HOURS"),
        ({"AWS_S3_ENDPOINT_URL": "ftp://x"}, "AWS_S3_ENDPOINT_URL"),
    ],
)
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        load(env)


def test_bad_value_stops_manage_py_with_a_clear_message(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={"PATH": "/usr/bin:/bin", "QUALITY_DEVICE": "tpu", "MARKET_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]),
    )
    assert result.returncode == 2
    assert "QUALITY_DEVICE" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_refuses_debug():
    with pytest.raises(ConfigError, match="DEBUG"):
        load(PROD | {"DEBUG": "true"})
    assert load(PROD | {"DEBUG": "false"}).debug is False


def test_production_with_debug_refuses_to_start(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    env = {"PATH": "/usr/bin:/bin", "MARKET_VAR_DIR": str(tmp_path), "DEBUG": "true"} | {k: v for k, v in PROD.items()}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[2]))
    assert result.returncode == 2
    assert "DEBUG" in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_secret_key_is_random_generated_once_into_var(tmp_path):
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first = load({"MARKET_VAR_DIR": str(first_dir)})
    again = load({"MARKET_VAR_DIR": str(first_dir)})
    other = load({"MARKET_VAR_DIR": str(second_dir)})
    assert len(first.secret_key) >= 50
    assert again.secret_key == first.secret_key  # kept across restarts
    assert other.secret_key != first.secret_key  # not a constant: each instance has its own
    key_file = first_dir / "secret_key"
    assert key_file.read_text().strip() == first.secret_key
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    # The key appears nowhere in the source.
    source = (Path(__file__).resolve().parents[2] / "marketplace" / "config.py").read_text()
    assert first.secret_key not in source
    assert "insecure" not in source.lower()


def test_explicit_secret_key_wins_and_writes_nothing(tmp_path):
    config = load({"MARKET_VAR_DIR": str(tmp_path), "SECRET_KEY": "k" * 60})
    assert config.secret_key == "k" * 60
    assert not (tmp_path / "secret_key").exists()


def test_step_time_limits_have_defaults_per_kind_and_take_overrides(tmp_path):
    from marketplace.config import STEP_TIME_LIMITS

    assert load({"MARKET_VAR_DIR": str(tmp_path)}).pipeline_time_limits == STEP_TIME_LIMITS
    assert all(0 < soft < hard for soft, hard in STEP_TIME_LIMITS.values())
    limits = load({"MARKET_VAR_DIR": str(tmp_path), "PIPELINE_TIME_LIMITS": "ingest=10:20, quality_audit=1.5:3"}).pipeline_time_limits
    assert limits["ingest"] == (10.0, 20.0) and limits["quality_audit"] == (1.5, 3.0)
    assert limits["quality"] == STEP_TIME_LIMITS["quality"]


@pytest.mark.parametrize("value", ["ingest=20:10", "ingest=10", "ingest=a:b", "nope=1:2", "checks=0:5"])
def test_bad_step_time_limits_name_the_variable(value, tmp_path):
    with pytest.raises(ConfigError, match="PIPELINE_TIME_LIMITS"):
        load({"MARKET_VAR_DIR": str(tmp_path), "PIPELINE_TIME_LIMITS": value})


def test_a_step_takes_its_own_limits_else_its_kinds(settings):
    from workers.jobs import step_time_limits

    settings.PIPELINE_TIME_LIMITS = {"ingest": (1, 2), "audit_sample": (3, 4), "checks": (5, 6), "quality": (7, 8), "quality_audit": (9, 10)}
    assert step_time_limits(step="ingest") == (1, 2)
    assert step_time_limits(step="quality_intrinsic") == (7, 8)
    assert step_time_limits(step="quality_audit") == (9, 10)
    assert step_time_limits(step="checks") == (5, 6)


def test_every_celery_task_is_time_limited():
    from django.conf import settings

    from workers.celery import app

    app.loader.import_default_modules()
    assert (app.conf.task_soft_time_limit, app.conf.task_time_limit) == settings.PIPELINE_TIME_LIMITS["other"]
    ours = [t for name, t in app.tasks.items() if not name.startswith("celery.")]
    assert len(ours) > 10
    for task in ours:
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft and hard and soft < hard, task.name
