"""QUALITY_NATIVE=required: a deployment built with the kernels fails loudly without them."""

import subprocess
import sys

import pytest

from quality.engine import native


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.usefixtures("compiled_kernels")
def test_required_and_built_runs_the_kernels():
    out = _run("from quality.engine import native; print(native.kernels() is not None)", QUALITY_NATIVE="required")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_required_but_unusable_raises_with_the_reason(tmp_path):
    # A library built from other sources than those beside it is unusable: simulated by a
    # sources digest that cannot match (the real check, not a patched kernels()).
    code = (
        "import quality.engine._native.sources as s; s.source_sha256 = lambda directory: 'not-the-build'\n"
        "import quality.engine.native as n\n"
        "try:\n    n.kernels()\nexcept n.KernelsUnavailable as e:\n    print('raised', e)\nelse:\n    print('ran')\n"
    )
    out = _run(code, QUALITY_NATIVE="required")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("raised QUALITY_NATIVE=required but the kernels are off:"), out.stdout


def test_unrequired_and_unusable_takes_the_python_path():
    code = (
        "import quality.engine._native.sources as s; s.source_sha256 = lambda directory: 'not-the-build'\n"
        "import quality.engine.native as n\n"
        "print(n.kernels() is None, n.status().startswith('off:'))\n"
    )
    out = _run(code, QUALITY_NATIVE="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True True"


def test_disabled_block_still_runs_the_python_path_when_required(monkeypatch):
    monkeypatch.setenv("QUALITY_NATIVE", "required")
    with native.disabled():
        assert native.kernels() is None
