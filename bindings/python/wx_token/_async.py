"""asyncio: ``await get_async(appid)`` and friends, which never block the event loop.

A token the binding has cached (see ``_client``) is returned at once, on the loop, with no
thread hop: that is the common case, and it costs what ``get`` costs. Anything that may block
(a fetch, or waiting for one another thread started, or a passive refresh) runs in the loop's
default executor. Concurrent callers on one loop share one in-flight executor job per app (and
per rejected token for ``invalidate_async``), so 100 coroutines asking for a cold app occupy one
worker thread, not 100; the engine in turn shares one upstream fetch among all threads and
processes. A caller that is cancelled stops waiting; the shared job finishes for the others.

The engine exports no call that answers "cached token or nothing" without possibly waiting for
a fetch in progress, so on a miss of the binding's cache the executor is always used.
"""

import asyncio
import weakref
from typing import Any, Awaitable, Callable, Dict, Hashable, Optional, Tuple

from . import _client

__all__ = ["get_async", "invalidate_async", "force_refresh_async"]

# loop -> {flight key: future}. Futures belong to one loop, so flights are per loop; a loop
# that goes away takes its flights with it.
_flights: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Hashable, asyncio.Future[Any]]]" = (
    weakref.WeakKeyDictionary()
)


def _shared(key: Hashable, fn: Callable[..., Any], *args: Any) -> "Awaitable[Any]":
    """Runs ``fn(*args)`` in the executor once for all concurrent callers asking with ``key``
    on this loop, and returns an awaitable for its result that one caller's cancellation does
    not cancel for the others."""
    loop = asyncio.get_running_loop()
    flights = _flights.get(loop)
    if flights is None:
        flights = _flights.setdefault(loop, {})
    fut = flights.get(key)
    if fut is None:
        fut = loop.run_in_executor(None, fn, *args)
        flights[key] = fut

        def _land(f: "asyncio.Future[Any]", flights: Dict[Hashable, Any] = flights) -> None:
            if flights.get(key) is f:
                del flights[key]

        fut.add_done_callback(_land)
    return asyncio.shield(fut)


def _cached(appid: str) -> Optional[str]:
    e = _client._cache.get(appid)
    if e is not None:
        token, generation, deadline, counter = e
        if counter.value == generation and _client._monotonic() < deadline:
            return token
    return None


async def get_async(appid: str) -> str:
    """:func:`wx_token.get` for asyncio: a valid access_token for ``appid``, without blocking
    the event loop (a cached token is returned at once; a fetch runs in the loop's default
    executor, one job per app however many coroutines ask). Raises like ``get``."""
    token = _cached(appid)
    if token is not None:
        return token
    _client._encode(appid, "appid")  # a bad argument raises here, not in a worker thread
    return await _shared(("get", appid), _client._get_slow, appid)  # type: ignore[no-any-return]


async def invalidate_async(appid: str, stale_token: str) -> None:
    """:func:`wx_token.invalidate` for asyncio (WeChat rejected ``stale_token``): the
    replacement is fetched in the executor; concurrent reports of the same token share one
    job. If the binding's cache already holds a different, current token, the engine has moved
    on and this returns at once. Raises like ``invalidate``."""
    _client._encode(appid, "appid")
    if stale_token is None:
        _client.invalidate(appid, stale_token)  # raises InvalidArgumentError, as the sync one
    _client._encode(stale_token, "stale_token")
    current = _cached(appid)
    if current is not None and current != stale_token:
        return
    await _shared(("invalidate", appid, stale_token), _client.invalidate, appid, stale_token)


async def force_refresh_async(appid: str) -> None:
    """:func:`wx_token.force_refresh` for asyncio (runs in the executor; concurrent calls for
    one app share one forced refresh). Raises like ``force_refresh``."""
    _client._encode(appid, "appid")
    await _shared(("force", appid), _client.force_refresh, appid)


def _pending_flights() -> Tuple[Hashable, ...]:
    """The flights in progress on the running loop (tests)."""
    return tuple(_flights.get(asyncio.get_running_loop(), {}))
