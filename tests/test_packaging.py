"""The project as a Python package (pyproject.toml + setup.py).

A wheel built offline (``pip wheel --no-build-isolation --no-index``, this venv's pinned
setuptools) from a clean copy of the sources holds every module of the apps, the package
data and the compiled kernels. Installed into a bare folder, it runs ``python -m quality``,
``python -m datasets validate`` and Django's checks from a working directory outside the
checkout, with ``python -S`` so that only that folder and the dependencies' site-packages
are on the path (no editable-install hook can reach back into the checkout). Without a
compiler the build still succeeds and the installed engine runs its Python path; with
``CI=true`` the same failure fails the build.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.quality.engine.coco_parity_helpers import pycoco_eval, random_case

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
APPS = ("marketplace", "datasets", "quality", "licensing", "workers")
KERNELS = "quality/engine/_native/_kernels" + sysconfig.get_config_var("EXT_SUFFIX")
SCAN = "marketplace/listings/_native/_catalogue_scan" + sysconfig.get_config_var("EXT_SUFFIX")
CI = os.environ.get("CI", "").lower() == "true"
# Left out of the copy the wheel is built from: what a checkout accumulates by being used.
NOT_SOURCES_AT_TOP = {".git", ".venv", "var", "media", "build", ".pytest_cache", ".ruff_cache"}


def _copy_sources(dest: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith((".so", ".pyc", ".tmp", ".egg-info"))}
        if Path(folder) == ROOT:
            skipped |= NOT_SOURCES_AT_TOP & set(names)
        if Path(folder) == ROOT / "bench":
            skipped |= {"out"} & set(names)
        return skipped

    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def _build_wheel(tmp: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    """Build a wheel from a fresh copy of the sources (a fresh build/ folder each time)."""
    src, out = _copy_sources(tmp / "src"), tmp / "wheelhouse"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-v", str(src), "-w", str(out)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600), out


def _install(wheel: Path, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -S ARGS`` in ``cwd`` with the target folder first and the dependencies after it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH", "MARKET_VAR_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), *site.getsitepackages()])
    env["DJANGO_SETTINGS_MODULE"] = "marketplace.settings"
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


PROBE = """
import json
import datasets, licensing, marketplace, quality, workers
from licensing.catalogue import CATALOGUE_PATH, catalogue_entries
from quality.engine import native
from marketplace.listings import catalogue_scan
print(json.dumps({
    "files": [m.__file__ for m in (datasets, licensing, marketplace, quality, workers)],
    "catalogue": str(CATALOGUE_PATH), "licenses": len(catalogue_entries()),
    "kernels": native.status(), "scan": catalogue_scan.status(),
}))
"""


def _probe(target: Path, cwd: Path) -> dict:
    done = _run_installed(target, cwd, "-c", PROBE)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _coco_files(folder: Path) -> tuple[Path, Path, list[float]]:
    """A small reference and results, and pycocotools' 12 stats for them."""
    gt, dt = random_case(5, n_images=8)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gt.json").write_text(json.dumps(gt))
    (folder / "dt.json").write_text(json.dumps(dt))
    return folder / "gt.json", folder / "dt.json", list(pycoco_eval(gt, dt, "segm").stats)


def _evaluate_installed(target: Path, tmp: Path) -> None:
    gt, dt, expected = _coco_files(tmp / "coco")
    done = _run_installed(target, tmp / "elsewhere", "-m", "quality", "evaluate", "--gt", str(gt), "--dt", str(dt), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["stats"] == expected


def _compiler_present() -> bool:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(cc.split()[0]) is not None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not CI and not _compiler_present():
        pytest.skip("no C compiler here: test_without_a_compiler_* covers the build without kernels")
    tmp = tmp_path_factory.mktemp("wheel")
    done, out = _build_wheel(tmp, dict(os.environ))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("installed") / "site"
    _install(wheel, target)
    return target


def test_the_wheel_holds_every_module_the_compiled_kernels_and_the_package_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert KERNELS in names and SCAN in names
    sources = {
        p.relative_to(ROOT).as_posix()
        for app in APPS
        for p in (ROOT / app).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".json", ".c", ".h", ".html", ".css", ".js")
    }
    assert {"licensing/data/licenses.json", "quality/engine/_native/rle.c", "quality/engine/_native/native.h", "marketplace/listings/_native/catalogue_scan.c", "datasets/migrations/__init__.py"} <= sources
    missing = sorted(sources - names)
    assert not missing, f"left out of the wheel: {missing[:10]}"
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == set(APPS), tops  # no tests/, bench/ or build helpers installed


def test_the_installed_package_runs_from_its_own_folder_with_its_kernels(installed, tmp_path):
    probe = _probe(installed, tmp_path / "elsewhere")
    for path in probe["files"]:
        assert Path(path).is_relative_to(installed), path
    assert Path(probe["catalogue"]).is_relative_to(installed) and probe["licenses"] > 0
    assert probe["kernels"] == f"on: {installed / KERNELS}"
    assert probe["scan"] == f"on: {installed / SCAN}"


def test_the_installed_engine_cli_evaluates_outside_the_checkout(installed, tmp_path):
    _evaluate_installed(installed, tmp_path)


def test_the_installed_datasets_cli_validates_outside_the_checkout(installed, tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[4, 4, 30, 4, 30, 20, 4, 20]], "area": 416, "bbox": [4, 4, 26, 16], "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "cup"}],
    }
    (folder / "ann.json").write_text(json.dumps(coco))
    done = _run_installed(installed, folder, "-m", "datasets", "validate", "ann.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 images, 1 instances, 1 categories" in done.stdout
    coco["annotations"][0]["image_id"] = 7  # an annotation of no image
    (folder / "bad.json").write_text(json.dumps(coco))
    bad = _run_installed(installed, folder, "-m", "datasets", "validate", "bad.json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    # Run-time files go to ./var of the working directory, never inside the installed package.
    assert (folder / "var").is_dir() and not (installed / "var").exists()


def test_the_installed_django_project_passes_its_checks(installed, tmp_path):
    done = _run_installed(installed, tmp_path / "elsewhere", "-m", "django", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_without_a_compiler_the_install_succeeds_and_the_engine_runs_its_python_path(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"CC": shutil.which("false") or "/bin/false"}
    done, out = _build_wheel(tmp_path, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "warning: the quality engine's C kernels were not built" in done.stdout + done.stderr
    (built,) = out.glob("*.whl")
    assert "warning: the catalogue scan's C kernels were not built" in done.stdout + done.stderr
    assert KERNELS not in zipfile.ZipFile(built).namelist() and SCAN not in zipfile.ZipFile(built).namelist()
    target = tmp_path / "site"
    _install(built, target)
    probe = _probe(target, tmp_path / "elsewhere")
    assert probe["kernels"].startswith("off: the kernels are not built")
    assert probe["scan"].startswith("off: the catalogue scan is not built")
    _evaluate_installed(target, tmp_path)  # same numbers as pycocotools on the Python path


def test_under_ci_a_failed_kernel_build_fails_the_install(tmp_path):
    env = dict(os.environ, CI="true", CC=shutil.which("false") or "/bin/false")
    done, out = _build_wheel(tmp_path, env)
    assert done.returncode != 0
    assert "CI=true requires them" in done.stdout + done.stderr
    assert not list(out.glob("*.whl"))
