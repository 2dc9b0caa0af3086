"""Loads the wx_token shared library and declares every C function it exports.

This is the only module that touches ``ctypes`` declarations; everything else goes through
the ``lib`` object defined here. See ``include/wx_token.h`` in the repository for the C API.

Where the library comes from, in order:

1. the file shipped inside this package (``wx_token/libwx_token.so``, ``.dylib`` on macOS,
   ``wx_token.dll`` on Windows), put there when the wheel is built;
2. otherwise the absolute path in the environment variable ``WX_TOKEN_LIB`` (for
   development in a source checkout).

The library is always loaded by absolute path, never through the system search path, so a
stray copy elsewhere can never be picked up by accident.
"""

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int32,
    c_size_t,
    c_uint64,
    c_void_p,
)
from typing import Any, Optional, Tuple

from ._version import __version__

#: Name of the environment variable naming the library file (development fallback).
ENV_LIB = "WX_TOKEN_LIB"

#: The longest token WeChat may hand out; a buffer of TOKEN_MAX_LEN + 1 always fits.
TOKEN_MAX_LEN = 512
#: The longest JSON wx_jssdk_config returns; a buffer of JSSDK_CONFIG_MAX_LEN + 1 always fits.
JSSDK_CONFIG_MAX_LEN = 512
#: Hex digits of a signature (SHA-1); its buffer needs SIGNATURE_LEN + 1 bytes.
SIGNATURE_LEN = 40
#: The most values wx_card_signature takes.
CARD_MAX_VALUES = 64

# Status numbers, stable and never reused (include/wx_token.h).
OK = 0
INVALID_ARGUMENT = 1
BUFFER_TOO_SMALL = 2
UNKNOWN_APP = 3
WECHAT_ERROR = 4
NETWORK = 5
PROTOCOL = 6
STORE = 7
PANIC = 8
RATE_LIMITED = 9


def library_filename() -> str:
    """The shared library's file name on this platform."""
    if sys.platform == "win32":
        return "wx_token.dll"
    if sys.platform == "darwin":
        return "libwx_token.dylib"
    return "libwx_token.so"


def _find_library() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    packaged = os.path.join(here, library_filename())
    if os.path.isfile(packaged):
        return packaged
    env = os.environ.get(ENV_LIB)
    if env:
        if not os.path.isabs(env):
            raise ImportError(
                "wx_token: %s must be an absolute path to the shared library, got a relative one"
                % ENV_LIB
            )
        if not os.path.isfile(env):
            raise ImportError("wx_token: %s names a file that does not exist: %s" % (ENV_LIB, env))
        return env
    raise ImportError(
        "wx_token: the shared library %s is not inside the package (%s) and %s is not set. "
        "Install a wheel built for this platform, or set %s to the absolute path of the "
        "library built by `cargo build -p wx_token`." % (library_filename(), here, ENV_LIB, ENV_LIB)
    )


#: Absolute path of the loaded library.
LIBRARY_PATH = _find_library()

lib = ctypes.CDLL(LIBRARY_PATH)

_size_p = POINTER(c_size_t)
_u64_p = POINTER(c_uint64)

# int32_t wx_token_register(const char *appid, const char *secret, const char *options_json);
lib.wx_token_register.argtypes = [c_char_p, c_char_p, c_char_p]
lib.wx_token_register.restype = c_int32

# int32_t wx_token_get(const char *appid, char *buf, size_t buf_len, size_t *out_len);
lib.wx_token_get.argtypes = [c_char_p, c_char_p, c_size_t, _size_p]
lib.wx_token_get.restype = c_int32

# int32_t wx_token_get_ex(const char *appid, char *buf, size_t buf_len, size_t *out_len,
#                         uint64_t *out_generation, uint64_t *out_expires_in_ms);
lib.wx_token_get_ex.argtypes = [c_char_p, c_char_p, c_size_t, _size_p, _u64_p, _u64_p]
lib.wx_token_get_ex.restype = c_int32

# int32_t wx_token_invalidate(const char *appid, const char *stale_token);
lib.wx_token_invalidate.argtypes = [c_char_p, c_char_p]
lib.wx_token_invalidate.restype = c_int32

# int32_t wx_token_generation_counter(const char *appid, const uint64_t **out_counter);
# The counter's address is received as a void* so that it arrives as a plain int.
lib.wx_token_generation_counter.argtypes = [c_char_p, POINTER(c_void_p)]
lib.wx_token_generation_counter.restype = c_int32

# int32_t wx_token_stats_json(const char *appid, char *buf, size_t buf_len, size_t *out_len);
lib.wx_token_stats_json.argtypes = [c_char_p, c_char_p, c_size_t, _size_p]
lib.wx_token_stats_json.restype = c_int32

# int32_t wx_ticket_get(const char *appid, const char *kind, char *buf, size_t buf_len, size_t *out_len);
lib.wx_ticket_get.argtypes = [c_char_p, c_char_p, c_char_p, c_size_t, _size_p]
lib.wx_ticket_get.restype = c_int32

# int32_t wx_ticket_invalidate(const char *appid, const char *kind, const char *stale_ticket);
lib.wx_ticket_invalidate.argtypes = [c_char_p, c_char_p, c_char_p]
lib.wx_ticket_invalidate.restype = c_int32

# int32_t wx_jssdk_config(const char *appid, const char *kind, const char *url,
#                         char *buf, size_t buf_len, size_t *out_len);
lib.wx_jssdk_config.argtypes = [c_char_p, c_char_p, c_char_p, c_char_p, c_size_t, _size_p]
lib.wx_jssdk_config.restype = c_int32

# int32_t wx_jssdk_signature(const char *ticket, const char *noncestr, const char *timestamp,
#                            const char *url, char *out_hex, size_t out_len);
lib.wx_jssdk_signature.argtypes = [c_char_p, c_char_p, c_char_p, c_char_p, c_char_p, c_size_t]
lib.wx_jssdk_signature.restype = c_int32

# int32_t wx_card_signature(const char *const *values, size_t count, char *out_hex, size_t out_len);
lib.wx_card_signature.argtypes = [POINTER(c_char_p), c_size_t, c_char_p, c_size_t]
lib.wx_card_signature.restype = c_int32


class WxEvent(Structure):
    """struct wx_event: its strings are valid for the duration of the callback only."""

    _fields_ = [
        ("level", c_int32),
        ("app", c_char_p),
        ("kind", c_char_p),
        ("message", c_char_p),
        ("status", c_int32),
        ("errcode", c_int32),
    ]


# typedef void (*wx_event_fn)(void *user_data, const wx_event *event);
EVENT_FN = CFUNCTYPE(None, c_void_p, POINTER(WxEvent))

# int32_t wx_set_event_callback(wx_event_fn fn, void *user_data, int32_t min_level);
lib.wx_set_event_callback.argtypes = [EVENT_FN, c_void_p, c_int32]
lib.wx_set_event_callback.restype = c_int32

# const char *wx_token_options_schema(void);   (static JSON, never freed)
lib.wx_token_options_schema.argtypes = []
lib.wx_token_options_schema.restype = c_char_p

# int32_t wx_token_shutdown(void);
lib.wx_token_shutdown.argtypes = []
lib.wx_token_shutdown.restype = c_int32

# int32_t wx_last_errcode(void);
lib.wx_last_errcode.argtypes = []
lib.wx_last_errcode.restype = c_int32

# size_t wx_last_error_message(char *buf, size_t buf_len);
lib.wx_last_error_message.argtypes = [c_char_p, c_size_t]
lib.wx_last_error_message.restype = c_size_t
# size_t wx_last_wechat_errmsg(char *buf, size_t buf_len);
lib.wx_last_wechat_errmsg.argtypes = [c_char_p, c_size_t]
lib.wx_last_wechat_errmsg.restype = c_size_t

# const char *wx_token_version(void);
lib.wx_token_version.argtypes = []
lib.wx_token_version.restype = c_char_p

# const char *wx_status_name(int32_t status);
lib.wx_status_name.argtypes = [c_int32]
lib.wx_status_name.restype = c_char_p


def library_version() -> str:
    """The loaded library's version string, e.g. ``"0.1.0"``."""
    v = lib.wx_token_version()
    return v.decode("utf-8") if v else ""


def status_name(status: int) -> str:
    """The library's name for a status number (``"UNKNOWN"`` for one it does not define)."""
    n = lib.wx_status_name(status)
    return n.decode("utf-8") if n else "UNKNOWN"


def last_error() -> Tuple[int, str, str]:
    """This thread's last (errcode, message, WeChat's errmsg). Call it right after the failing
    call, on the same thread: the library keeps one last error per OS thread, overwritten by
    the next call."""
    errcode = int(lib.wx_last_errcode())
    return errcode, _read_text(lib.wx_last_error_message), _read_text(lib.wx_last_wechat_errmsg)


def read_sized(fn: Any, key: bytes, first_size: int, *more: Optional[bytes]) -> Tuple[int, bytes]:
    """Calls a `(key, *more, buf, buf_len, out_len)` export, growing the buffer on
    BUFFER_TOO_SMALL: (status, bytes written) — bytes only on OK."""
    size = first_size
    st = BUFFER_TOO_SMALL
    for _ in range(4):
        buf = ctypes.create_string_buffer(size)
        n = c_size_t()
        st = int(fn(key, *more, buf, size, ctypes.byref(n)))
        if st != BUFFER_TOO_SMALL:
            return st, (buf.raw[: n.value] if st == OK else b"")
        size = n.value + 1
    return st, b""


def _read_text(fn: Any) -> str:
    buf = ctypes.create_string_buffer(512)
    n = int(fn(buf, len(buf)))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        n = min(int(fn(buf, len(buf))), n)
    return buf.raw[:n].decode("utf-8", "replace")


def _check_version() -> None:
    got = library_version()
    if got != __version__:
        raise ImportError(
            "wx_token: package version %s does not match the shared library's version %s (%s); "
            "reinstall the package, or point %s at a matching build"
            % (__version__, got or "?", LIBRARY_PATH, ENV_LIB)
        )


_check_version()


def generation_counter_address(appid: bytes) -> Tuple[int, Optional[int]]:
    """(status, address) of the app's generation counter; address is None on failure."""
    out = c_void_p()
    st = int(lib.wx_token_generation_counter(appid, ctypes.byref(out)))
    if st != OK:
        return st, None
    return st, out.value
