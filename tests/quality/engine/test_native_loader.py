"""The shared loader of the compiled extensions (quality/engine/_native/sources.py), against
the real built kernels: the switch, QUALITY_NATIVE=required, a stale fingerprint and an
interface mismatch are each reported, and each turns the library off."""

from __future__ import annotations

import importlib
import os
import shutil

import pytest

from quality.engine import native
from quality.engine._native import sources
from quality.engine._native.sources import FingerprintedExtension

KERNELS_MODULE = "quality.engine._native._kernels"


class Unavailable(RuntimeError):
    pass


def loader(*, abi: int = native.ABI, sources_dir=sources.HERE, module_name: str = KERNELS_MODULE) -> FingerprintedExtension:
    return FingerprintedExtension(
        lambda: importlib.import_module(module_name), abi, sources_dir, what="the kernels are", unavailable_error=Unavailable
    )


@pytest.fixture(autouse=True)
def built(monkeypatch):
    """The real library must be there: these tests check what the loader does with it."""
    if os.environ.get("QUALITY_NATIVE") == "0":
        pytest.skip("QUALITY_NATIVE=0 turns the compiled kernels off on purpose")
    assert native.kernels() is not None, native.status()
    monkeypatch.setenv("QUALITY_NATIVE", "1")


@pytest.fixture
def copied_sources(tmp_path):
    """A folder holding the same C sources as the build's."""
    for path in sources.c_sources() + sources.headers():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def test_the_built_library_with_its_own_sources_and_interface_is_on():
    ext = loader()
    assert ext.status() == f"on: {native.kernels().__file__}"
    assert ext.module() is native.kernels()


def test_copied_sources_have_the_build_fingerprint(copied_sources):
    ext = loader(sources_dir=copied_sources)
    assert ext.status().startswith("on: "), ext.status()
    assert ext.module() is not None


def test_a_changed_source_makes_the_library_stale(copied_sources):
    first = sources.c_sources(copied_sources)[0]
    first.write_bytes(first.read_bytes() + b"\n/* changed since the build */\n")
    ext = loader(sources_dir=copied_sources)
    assert ext.module() is None
    assert ext.status() == f"off: {native.kernels().__file__} was built from other sources than those beside it; rebuild (make native)"


def test_an_added_header_makes_the_library_stale(copied_sources):
    (copied_sources / "extra.h").write_text("#define EXTRA 1\n")
    ext = loader(sources_dir=copied_sources)
    assert ext.module() is None
    assert "was built from other sources" in ext.status()


def test_another_interface_is_refused_and_named():
    built_abi = native.kernels().ABI
    ext = loader(abi=built_abi + 1)
    assert ext.module() is None
    assert ext.status() == (f"off: {native.kernels().__file__} has ABI {built_abi}, this code needs {built_abi + 1}; rebuild (make native)")


def test_a_library_that_is_not_there_is_reported():
    ext = loader(module_name="quality.engine._native._no_such_library")
    assert ext.module() is None
    assert ext.status().startswith("off: the kernels are not built (No module named 'quality.engine._native._no_such_library')")


def test_the_switch_turns_a_usable_library_off(monkeypatch):
    monkeypatch.setenv("QUALITY_NATIVE", "0")
    ext = loader()
    assert ext.module() is None
    assert ext.status() == "off: QUALITY_NATIVE=0"


@pytest.mark.parametrize("abi_offset", [1, 0])
def test_required_raises_the_callers_error_with_the_reason_only_when_off(monkeypatch, abi_offset):
    monkeypatch.setenv("QUALITY_NATIVE", "required")
    ext = loader(abi=native.ABI + abi_offset)
    if abi_offset:
        with pytest.raises(Unavailable, match=r"^QUALITY_NATIVE=required but the kernels are off: .* has ABI \d+, this code needs"):
            ext.module()
    else:
        assert ext.module() is native.kernels()


def test_required_raises_for_stale_sources(monkeypatch, copied_sources):
    (copied_sources / "extra.h").write_text("#define EXTRA 1\n")
    monkeypatch.setenv("QUALITY_NATIVE", "required")
    with pytest.raises(Unavailable, match="was built from other sources"):
        loader(sources_dir=copied_sources).module()


def test_disabled_is_the_python_path_even_when_required_and_status_ignores_it(monkeypatch):
    monkeypatch.setenv("QUALITY_NATIVE", "required")
    ext = loader()
    with ext.disabled():
        with ext.disabled():
            assert ext.module() is None
        assert ext.module() is None
        assert ext.status().startswith("on: ")
    assert ext.module() is native.kernels()


def test_the_verdict_is_taken_once_per_process(monkeypatch):
    ext = loader()
    assert ext.module() is not None
    monkeypatch.setenv("QUALITY_NATIVE", "0")
    assert ext.module() is not None, "a switch flipped after the first use does not reload"
