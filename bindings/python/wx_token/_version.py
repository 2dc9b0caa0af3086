"""The package version. It must equal the shared library's ``wx_token_version()``;
``wx_token._ffi`` checks that at import."""

__version__ = "0.1.0"
