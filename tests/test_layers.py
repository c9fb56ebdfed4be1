"""The house's layers (.importlinter) hold, and an import that points up breaks them with
the offending import named."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("marketplace", "datasets", "licensing", "quality", "workers")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(cwd / ".importlinter")],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_layer_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.fixture
def house_copy(tmp_path) -> Path:
    """The project's Python sources and contracts, in a scratch folder to break."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.c", "*.h", "data"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("datasets/upward_probe.py", "from marketplace.listings.services import listing_sync\n", "The apps point down"),
        ("marketplace/audit/upward_probe.py", "import licensing.selectors\n", "The apps point down"),
        ("quality/upward_probe.py", "def later():\n    from workers.pipeline import pipeline_start\n", "The apps point down"),
        ("workers/upward_probe.py", "from marketplace.reactions import REACTIONS\n", "No app imports the project's own modules"),
        ("quality/engine/upward_probe.py", "from django.db import models\n", "The engine imports no Django and no app"),
    ],
)
def test_an_upward_import_breaks_the_contract_and_is_named(house_copy, module, line, contract):
    (house_copy / module).write_text(line)
    result = lint_imports(house_copy)
    assert result.returncode != 0
    probe = module.removesuffix(".py").replace("/", ".")
    assert f"{contract} BROKEN" in result.stdout, result.stdout
    assert probe in result.stdout, result.stdout
