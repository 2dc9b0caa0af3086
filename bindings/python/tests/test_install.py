"""Packaging: `pip install ./bindings/python` into a fresh virtualenv gives a package that
carries the shared library, imports cleanly from anywhere, and gets a token in three lines;
`pip wheel` gives a platform wheel."""

import glob
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

import wx_token
from wx_token import _ffi
from conftest import PKG_ROOT, secret_for

BUILD = os.path.join(PKG_ROOT, "build")
VENV = os.path.join(BUILD, "test-venv")
DIST = os.path.join(BUILD, "test-dist")


def _venv_python() -> str:
    return os.path.join(VENV, "Scripts" if sys.platform == "win32" else "bin", "python")


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WX_TOKEN_LIB", "PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def venv() -> str:
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    # The build copies the library named by WX_TOKEN_LIB into the package.
    env = _clean_env(WX_TOKEN_LIB=wx_token.LIBRARY_PATH, PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run(
        [_venv_python(), "-m", "pip", "install", "-q", PKG_ROOT],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.returncode == 0, proc.stdout
    return VENV


def test_fresh_venv_install_quick_start(venv, fake, new_app, tmp_path) -> None:
    appid = new_app("venv", register=False)
    script = textwrap.dedent(
        """
        import os, sys, wx_token
        wx_token.register(sys.argv[1], sys.argv[2], api_base=sys.argv[3])
        token = wx_token.get(sys.argv[1])
        here = os.path.dirname(wx_token.__file__)
        assert wx_token.LIBRARY_PATH == os.path.join(here, wx_token._ffi.library_filename()), wx_token.LIBRARY_PATH
        assert os.path.isfile(os.path.join(here, "py.typed"))
        assert wx_token.library_version() == wx_token.__version__
        print(token)
        """
    )
    # From an unrelated cwd, without WX_TOKEN_LIB: the installed package must be self-contained.
    proc = subprocess.run(
        [_venv_python(), "-c", script, appid, secret_for(appid), fake.base_url],
        cwd=str(tmp_path), env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert fake.api(token) == {"ip_list": ["127.0.0.1"]}
    assert token == fake.current(appid)


def test_installed_package_imports_cleanly(venv, tmp_path) -> None:
    proc = subprocess.run(
        [_venv_python(), "-W", "error", "-c",
         "import wx_token, wx_token._ffi as f; print(wx_token.__version__, f.LIBRARY_PATH)"],
        cwd=str(tmp_path), env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    version, path = proc.stdout.split()
    assert version == wx_token.__version__
    assert path.startswith(os.path.realpath(VENV)) or path.startswith(VENV)


def test_wheel_is_platform_specific_and_carries_the_library(tmp_path) -> None:
    shutil.rmtree(DIST, ignore_errors=True)
    env = _clean_env(WX_TOKEN_LIB=wx_token.LIBRARY_PATH, PIP_DISABLE_PIP_VERSION_CHECK="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", DIST, PKG_ROOT],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.returncode == 0, proc.stdout
    wheels = glob.glob(os.path.join(DIST, "wx_token-*.whl"))
    assert len(wheels) == 1, wheels
    name = os.path.basename(wheels[0])
    assert name.startswith("wx_token-%s-py3-none-" % wx_token.__version__), name
    assert not name.endswith("-any.whl"), name
    with zipfile.ZipFile(wheels[0]) as z:
        names = set(z.namelist())
        assert "wx_token/" + _ffi.library_filename() in names
        assert "wx_token/py.typed" in names
        wheel_meta = z.read("wx_token-%s.dist-info/WHEEL" % wx_token.__version__).decode()
    assert "Root-Is-Purelib: false" in wheel_meta
