"""register / get / invalidate, with a Python-side cache that makes a cached ``get`` cost
about as much as a dict lookup.

How the cache stays correct
---------------------------
The engine (the shared library) owns the token. For each app it exposes a 64-bit
*generation counter* at a fixed address (valid for the process lifetime, and at the same
address in fork children) that changes whenever the token it hands out changes: background
refresh, invalidation, a new secret. ``wx_token_get_ex`` returns a token together with its
generation and remaining lifetime.

The binding keeps, per appid, one immutable tuple ``(token, generation, deadline, counter)``
where ``counter`` is a ``ctypes.c_uint64`` view of the engine's counter and ``deadline`` is a
``time.monotonic()`` instant a little before the token expires (measured from *before* the
call, so it is never later than the engine's own expiry). ``get`` returns the cached string
only while ``counter.value == generation`` and ``time.monotonic() < deadline``; otherwise it
asks the engine again. So the binding never hands out a token the engine has dropped or
that has expired, and it learns of refreshes and invalidations from one 8-byte memory read.

Thread safety: entries are replaced whole (one dict store of a new tuple), never mutated,
so a reader sees either the old or the new entry. There is no Python-side lock (nothing can
be left locked across ``fork()``); concurrent misses all call into the engine, which shares
one fetch among them.
"""

import ctypes
import json
import os
import sys
import time
from ctypes import byref, c_size_t, c_uint64
from typing import TYPE_CHECKING, Any, Callable, Dict, NamedTuple, Optional, Tuple

from . import _ffi
from ._errors import InvalidArgumentError, last_error_for
from ._options import Options

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

__all__ = ["register", "get", "token_info", "invalidate", "force_refresh", "shutdown", "TokenInfo"]

#: Seconds before the engine's expiry at which the binding stops using its cached copy and
#: asks the engine again (which then answers with its own view of the token).
EXPIRY_MARGIN_SECS = 0.5

_lib = _ffi.lib
_OK = _ffi.OK
_BUFFER_TOO_SMALL = _ffi.BUFFER_TOO_SMALL
_monotonic = time.monotonic

# appid -> (token, generation, deadline, counter view). Replaced whole, never mutated.
_Entry = Tuple[str, int, float, c_uint64]
_cache: Dict[str, _Entry] = {}
# appid -> view of the engine's generation counter (its address never changes).
_counters: Dict[str, c_uint64] = {}


class TokenInfo(NamedTuple):
    """A token as the engine handed it out."""

    access_token: str
    #: Changes whenever the token handed out for the app changes.
    generation: int
    #: Seconds the token remains valid, as of the call.
    expires_in: float

    def __repr__(self) -> str:
        # A token is a bearer credential: do not print it whole.
        return "TokenInfo(access_token=%r, generation=%d, expires_in=%.3f)" % (
            _redact(self.access_token),
            self.generation,
            self.expires_in,
        )


def _redact(token: str) -> str:
    return token[:6] + "...(%d chars)" % len(token)


def _encode(value: Any, what: str) -> bytes:
    """UTF-8 bytes of a str argument. Errors never include the value (it may be a secret);
    they are raised outside any ``except`` so no exception carrying it is chained."""
    problem = None
    if not isinstance(value, str):
        problem = "%s must be a str, not %s" % (what, type(value).__name__)
    else:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            data = None
        if data is None:
            problem = "%s is not valid UTF-8 text (it contains a lone surrogate)" % what
        elif b"\0" in data:
            problem = "%s must not contain NUL characters" % what
        else:
            return data
    raise InvalidArgumentError(problem)


def _counter_for(appid: str, key: bytes) -> Optional[c_uint64]:
    view = _counters.get(appid)
    if view is None:
        st, addr = _ffi.generation_counter_address(key)
        if st != _OK or not addr:
            return None
        view = c_uint64.from_address(addr)
        _counters[appid] = view
    return view


def register(appid: str, secret: Optional[str], **options: "Unpack[Options]") -> None:
    """Registers an app, or updates its secret and options if it is registered already.

    Nothing is fetched here; the first :func:`get` does that. Options (all optional, typed by
    :class:`Options`; ``options_schema()`` has the engine's defaults and meanings) are
    passed to the engine as JSON: ``api_base`` (default ``"https://api.weixin.qq.com"``;
    ``http://`` only for loopback hosts), ``endpoint`` (``"stable"``, the default, or
    ``"classic"``), ``refresh_ahead_secs`` (300), ``timeout_ms`` (5000), ``retry_min_ms``
    (500), ``retry_max_ms`` (60000), ``error_cooldown_ms`` (30000). Unknown options raise
    :class:`InvalidArgumentError`.

    Sharing one token between processes and hosts: ``store`` (``"memory"``, the default;
    ``"file:/abs/dir"``; ``"redis://host:port/db"``), ``store_prefix``, ``lease_ms``,
    ``store_sync_ms``, ``store_fallback_per_hour`` (see the project's docs/STORES.md).
    Client mode: ``central`` (a wx-tokend server's base URL) with ``central_key``; then
    ``secret`` is ``None``: the server holds it. Without ``central``, ``secret=None`` raises
    :class:`InvalidArgumentError`.

    The cached token survives re-registration unless the secret, ``api_base`` or
    ``endpoint`` changed. The secret is kept by the engine only, in memory, and never
    appears in an exception.

    Raises:
        InvalidArgumentError: a bad appid, secret or option.
    """
    key = _encode(appid, "appid")
    sec = None if secret is None else _encode(secret, "secret")
    options_json = None
    if options:
        try:
            options_json = json.dumps(options).encode("utf-8")
        except (TypeError, ValueError):
            options_json = None
        if options_json is None:
            raise InvalidArgumentError("options must be JSON-serializable (str, int, bool)")
    st = _lib.wx_token_register(key, sec, options_json)
    del sec
    if st != _OK:
        raise last_error_for(st)
    _cache.pop(appid, None)
    _counter_for(appid, key)


def _fetch(appid: str) -> Tuple[str, int, float, float]:
    """Asks the engine: (token, generation, expires_in_secs, monotonic time before the call)."""
    key = _encode(appid, "appid")
    size = _ffi.TOKEN_MAX_LEN + 1
    for _ in range(4):
        buf = ctypes.create_string_buffer(size)
        n = c_size_t()
        gen = c_uint64()
        ms = c_uint64()
        t0 = _monotonic()
        st = _lib.wx_token_get_ex(key, buf, size, byref(n), byref(gen), byref(ms))
        if st == _OK:
            return buf.raw[: n.value].decode("utf-8"), gen.value, ms.value / 1000.0, t0
        if st != _BUFFER_TOO_SMALL:
            raise last_error_for(st)
        size = n.value + 1
    raise last_error_for(st)


def _get_slow(appid: str) -> str:
    token, generation, expires_in, t0 = _fetch(appid)
    view = _counter_for(appid, appid.encode("utf-8"))
    if view is not None:
        _cache[appid] = (token, generation, t0 + expires_in - EXPIRY_MARGIN_SECS, view)
    return token


def _make_get() -> Callable[[str], str]:
    # Everything the fast path touches is bound in this closure: no global or attribute
    # lookups beyond the entry tuple and the counter's value.
    cache_get = _cache.get
    monotonic = _monotonic
    slow = _get_slow

    def get(appid: str) -> str:
        """Returns a valid access_token for ``appid``.

        A cached token costs a dict lookup, one 8-byte read of the engine's generation
        counter and a clock read. Otherwise the engine is asked: it returns its cached token
        without I/O, or fetches one (a single fetch shared by all threads asking at once).

        Raises:
            UnknownAppError: ``appid`` was never registered in this process.
            WeChatError: WeChat refused (``errcode`` says why, e.g. 40125 wrong secret).
            NetworkError, ProtocolError: fetching failed. After a failure, calls within the
                engine's backoff or cooldown get the same error without calling WeChat.
            InvalidArgumentError: ``appid`` is not a valid str.
        """
        e = cache_get(appid)
        if e is not None:
            token, generation, deadline, counter = e
            if counter.value == generation and monotonic() < deadline:
                return token
        return slow(appid)

    return get


get = _make_get()


def token_info(appid: str) -> TokenInfo:
    """The engine's current token for ``appid`` with its generation and remaining lifetime
    (always asks the engine; raises like :func:`get`)."""
    token, generation, expires_in, _ = _fetch(appid)
    return TokenInfo(token, generation, expires_in)


def invalidate(appid: str, stale_token: str) -> None:
    """The passive refresh: call it when a WeChat API answered 40001, 42001 or 40014 for
    ``stale_token`` (the token that call used; required).

    If ``stale_token`` is still the engine's token, it stops being handed out and a
    replacement is fetched before this returns (one fetch however many threads report it).
    If the engine has already moved on, nothing happens. With the stable endpoint the
    engine first asks WeChat in normal mode and only forces a refresh if WeChat hands back
    the rejected token, within WeChat's limits (one per 30 s per app, 20 a day).

    To force a refresh without a rejected token, use :func:`force_refresh`.

    Raises:
        RateLimitedError: a forced refresh was needed but WeChat's limits forbid it now
            (the current token stays in service).
        UnknownAppError, WeChatError, NetworkError, ProtocolError: as for :func:`get`.
        InvalidArgumentError: ``stale_token`` is not a str (``None`` included).
    """
    key = _encode(appid, "appid")
    if stale_token is None:
        # Before the split into invalidate/force_refresh, None meant "force": refuse it
        # loudly rather than spend one of WeChat's 20 daily forced refreshes by accident.
        raise InvalidArgumentError(
            "invalidate needs the rejected token; use force_refresh(appid) to force a refresh")
    stale = _encode(stale_token, "stale_token")
    _invalidate(appid, key, stale)


def force_refresh(appid: str) -> None:
    """Replaces the app's token with a new one from WeChat now, whatever the current one.

    Spends one of WeChat's forced refreshes: the engine allows at most one per 30 s per app
    and 20 a day (else :class:`RateLimitedError`, and the current token stays in service).
    For a token WeChat rejected, call :func:`invalidate` with that token instead: it forces
    nothing when another process already replaced it.

    Raises:
        RateLimitedError: WeChat's forced-refresh limits forbid it now.
        UnknownAppError, WeChatError, NetworkError, ProtocolError: as for :func:`get`.
    """
    _invalidate(appid, _encode(appid, "appid"), None)


def _invalidate(appid: str, key: bytes, stale: Optional[bytes]) -> None:
    # The binding's own cached copy is dropped in every case.
    _cache.pop(appid, None)
    st = _lib.wx_token_invalidate(key, stale)
    if st != _OK:
        raise last_error_for(st)


def shutdown() -> None:
    """Stops the engine's background refresh thread and waits for refreshes in progress.

    Cached tokens stay usable and any later call resumes background work. Python never
    unloads the library, so calling this is optional (e.g. in a test teardown)."""
    _lib.wx_token_shutdown()


# --- fork() ----------------------------------------------------------------------------------
#
# The engine survives fork() by itself (its atfork handlers keep its locks consistent and the
# child restarts background refreshing on its next call into the library). But this binding's
# cached get never calls the engine while its entry is fresh, so a forked worker would only
# restart background refreshing at its first cache miss, near expiry. So the child pokes the
# engine at once, with a call that does no I/O.

#: An appid that can never be registered (it contains spaces): asking for it resumes the
#: engine's background work and fails with UNKNOWN_APP, without I/O.
_POKE_APPID = b"wx-token python fork poke"


def _resume_background() -> None:
    _lib.wx_token_get(_POKE_APPID, None, 0, None)


def _after_fork_in_child() -> None:
    if _counters:
        _resume_background()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _forget_all() -> None:
    """Drops every binding-side cached entry (tests and benchmarks)."""
    _cache.clear()
