"""Build hooks for the wx_token package (its metadata is in pyproject.toml).

The package is pure Python (ctypes) plus the engine's shared library, which setuptools-rust
builds from the Rust crate with cargo (release profile, stripped) and puts into the package as
``wx_token/libwx_token.so``:

* in a source checkout the crate is the repository root (``../../Cargo.toml``);
* in an sdist it is ``rust/``, the crate as ``cargo package`` packs it (Cargo.toml with the
  workspace settings resolved, Cargo.lock, build.rs, cbindgen.toml, include/, src/), so an
  sdist builds anywhere with cargo and no checkout.

``CARGO_TARGET_DIR`` is honoured (cargo reads it), so several builds can share one release
build. The wheel is tagged ``py3-none-<platform>``: the library is native, but it is loaded
with ctypes and uses no Python ABI.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension, Strip
from setuptools_rust.build import build_rust

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
#: Where an sdist carries the crate.
SDIST_CRATE = "rust"


def library_filename() -> str:
    if sys.platform == "win32":
        return "wx_token.dll"
    if sys.platform == "darwin":
        return "libwx_token.dylib"
    return "libwx_token.so"


def crate_manifest() -> str:
    """Cargo.toml of the crate to build, relative to this directory (setuptools-rust wants it
    relative): the sdist's copy if present, else the checkout's."""
    if os.path.isfile(os.path.join(HERE, SDIST_CRATE, "Cargo.toml")):
        return os.path.join(SDIST_CRATE, "Cargo.toml")
    if os.path.isfile(os.path.join(REPO, "Cargo.toml")):
        return os.path.relpath(os.path.join(REPO, "Cargo.toml"), HERE)
    raise SystemExit("wx_token build: no Rust crate found (neither %s/ nor the repository root)" % SDIST_CRATE)


class BuildRust(build_rust):
    """setuptools-rust names a library after the Python extension suffix
    (``.cpython-311-x86_64-linux-gnu.so``); ctypes loads a plain ``libwx_token.so``."""

    def get_dylib_ext_path(self, ext, target_fname):  # type: ignore[no-untyped-def]
        path = super().get_dylib_ext_path(ext, target_fname)
        return os.path.join(os.path.dirname(path), library_filename())


class SdistWithCrate(sdist):
    """Adds the Rust crate, as `cargo package` packs it, under rust/ in the sdist."""

    def make_release_tree(self, base_dir, files):  # type: ignore[no-untyped-def]
        super().make_release_tree(base_dir, files)
        dest = os.path.join(base_dir, SDIST_CRATE)
        if os.path.isfile(os.path.join(HERE, SDIST_CRATE, "Cargo.toml")):
            # An sdist made from an sdist: carry the crate on as it is.
            shutil.copytree(os.path.join(HERE, SDIST_CRATE), dest)
            return
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["cargo", "package", "--manifest-path", os.path.join(REPO, "Cargo.toml"),
                 "-p", "wx_token", "--no-verify", "--allow-dirty", "--locked",
                 "--target-dir", tmp],
                check=True,
            )
            crates = [f for f in os.listdir(os.path.join(tmp, "package")) if f.endswith(".crate")]
            if len(crates) != 1:
                raise SystemExit("wx_token sdist: expected one .crate, got %r" % crates)
            with tarfile.open(os.path.join(tmp, "package", crates[0])) as tar:
                top = crates[0][: -len(".crate")]
                for member in tar.getmembers():
                    if not member.name.startswith(top + "/") or ".." in member.name.split("/"):
                        raise SystemExit("wx_token sdist: unexpected path in crate: %s" % member.name)
                    member.name = member.name[len(top) + 1:]
                    if member.name:
                        tar.extract(member, dest)
        for required in ("Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "src/lib.rs"):
            if not os.path.isfile(os.path.join(dest, required)):
                raise SystemExit("wx_token sdist: the packed crate lacks %s" % required)
        # Its own workspace root: unpacked inside some other cargo workspace, cargo must not
        # take it for a member of that one.
        with open(os.path.join(dest, "Cargo.toml"), "a", encoding="utf-8") as f:
            f.write("\n[workspace]\n")


class BdistWheelAnyPython(bdist_wheel):
    """py3-none-<platform>: one wheel per platform serves every Python 3 (no Python ABI used)."""

    def get_tag(self):  # type: ignore[no-untyped-def]
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    rust_extensions=[
        RustExtension(
            "wx_token.libwx_token",
            path=crate_manifest(),
            binding=Binding.NoBinding,
            strip=Strip.All,
            debug=False,
            cargo_manifest_args=["--locked"],
        )
    ],
    cmdclass={"build_rust": BuildRust, "sdist": SdistWithCrate, "bdist_wheel": BdistWheelAnyPython},
)
