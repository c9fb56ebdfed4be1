"""``manage.py check --deploy`` is clean with production-like values."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_passes_with_production_settings(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "MARKET_PROFILE": "production",
        "SECRET_KEY": "p7$Kx9!vQ2#mZr4@wL8^nB3&hT6*yD1%cF5(jG0)sA-eU_iO+pR=kV;lN:xW<qE>",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/marketplace",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "AWS_STORAGE_BUCKET_NAME": "market-prod",
        "ALLOWED_HOSTS": "market.example.com",
        "MARKET_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
