"""Build hooks for the wx_token wheel.

The package is pure Python (ctypes) plus the engine's shared library, which is copied into
the package at build time from, in order:

1. the environment variable WX_TOKEN_LIB (an absolute path to the built library);
2. <repo>/target/release/<libname>, then <repo>/target/debug/<libname>
   (build it first with `cargo build --release -p wx_token`).

The wheel is marked platform-specific but not tied to a Python ABI (tag py3-none-<platform>):
the library is native, the Python code is not.
"""

import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def library_filename() -> str:
    if sys.platform == "win32":
        return "wx_token.dll"
    if sys.platform == "darwin":
        return "libwx_token.dylib"
    return "libwx_token.so"


def find_library() -> str:
    env = os.environ.get("WX_TOKEN_LIB")
    if env:
        if not os.path.isfile(env):
            raise SystemExit("wx_token build: WX_TOKEN_LIB=%s does not exist" % env)
        return os.path.abspath(env)
    for profile in ("release", "debug"):
        candidate = os.path.join(REPO, "target", profile, library_filename())
        if os.path.isfile(candidate):
            return candidate
    raise SystemExit(
        "wx_token build: no %s found. Run `cargo build --release -p wx_token` at the repository "
        "root (%s) first, or set WX_TOKEN_LIB to the library's absolute path." % (library_filename(), REPO)
    )


class BuildPyWithLibrary(build_py):
    """build_py that also copies the engine's shared library into the package."""

    def run(self) -> None:
        super().run()
        src = find_library()
        dest_dir = os.path.join(self.build_lib, "wx_token")
        os.makedirs(dest_dir, exist_ok=True)
        dest = os.path.join(dest_dir, library_filename())
        self.announce("copying %s -> %s" % (src, dest), level=2)
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o755)


class BinaryDistribution(Distribution):
    """Makes bdist_wheel produce a platform wheel (the package carries a native library)."""

    def has_ext_modules(self) -> bool:
        return True


cmdclass = {"build_py": BuildPyWithLibrary}

try:
    try:
        from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
    except ImportError:
        from wheel.bdist_wheel import bdist_wheel as _bdist_wheel  # type: ignore

    class BdistWheel(_bdist_wheel):  # type: ignore[misc, valid-type]
        def finalize_options(self) -> None:
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):  # type: ignore[no-untyped-def]
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = BdistWheel
except ImportError:
    pass

setup(cmdclass=cmdclass, distclass=BinaryDistribution)
