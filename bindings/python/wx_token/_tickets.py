"""JS-SDK tickets and signatures: ``ticket``, ``invalidate_ticket``, ``jssdk_config``,
``jssdk_signature``, ``card_signature`` (and ``ticket_async``, ``jssdk_config_async``).

Tickets live in the engine with the token's guarantees (one fetch per (id, kind) across
threads, processes and hosts through the app's store or the central server, refreshed ahead,
compare-and-invalidate, a lifetime counted from when a ticket was first seen). The binding
keeps no cache of its own: a cached ticket costs one call into the engine, which does no I/O
for it, and a page's ``wx.config`` must never be signed with a ticket the engine has dropped.
"""

import asyncio
import ctypes
import json
from typing import Any, Dict, Iterable, Literal, Union

from . import _ffi
from ._async import _shared
from ._client import _encode
from ._errors import InvalidArgumentError, last_error_for

__all__ = [
    "TicketKind",
    "ticket",
    "invalidate_ticket",
    "jssdk_config",
    "jssdk_signature",
    "card_signature",
    "ticket_async",
    "jssdk_config_async",
]

#: ``"jsapi"`` (mp: ``wx.config``; WeCom: the corp ticket for WeCom's ``wx.config``),
#: ``"wx_card"`` (mp: the card api_ticket for :func:`card_signature`) or ``"agent_config"``
#: (WeCom: the app's ticket for ``wx.agentConfig``; needs the ``agentid`` option).
TicketKind = Literal["jsapi", "wx_card", "agent_config"]

_lib = _ffi.lib
_OK = _ffi.OK


def ticket(appid: str, kind: TicketKind = "jsapi") -> str:
    """A valid JS-SDK ticket of ``kind`` for ``appid`` (an mp appid or a WeCom id).

    Cached in the engine without I/O; otherwise fetched once for every thread and process
    sharing the app's store (with the app's access token; a token WeChat rejects is refreshed
    once and the ticket asked for again).

    Raises:
        InvalidArgumentError: a bad argument, or a kind the id's platform does not have.
        UnknownAppError: ``appid`` was never registered in this process.
        RateLimitedError: WeCom's hourly ticket limit is reached in this process.
        WeChatError, NetworkError, ProtocolError, StoreError: the fetch (of the ticket, or of
            the token it needs) failed.
    """
    st, raw = _ffi.read_sized(_lib.wx_ticket_get, _encode(appid, "appid"), _ffi.TOKEN_MAX_LEN + 1,
                              _encode(kind, "kind"))
    if st != _OK:
        raise last_error_for(st)
    return raw.decode("utf-8")


def invalidate_ticket(appid: str, kind: TicketKind, stale_ticket: str) -> None:
    """A page's ``wx.config`` failed with "invalid signature" although its URL was right:
    if ``stale_ticket`` is still the engine's ticket of ``kind``, it is withdrawn and its
    replacement fetched before this returns (one fetch however many callers report it); if
    the engine has moved on, nothing happens. WeChat may hand the same ticket back (it calls
    it valid): it then stays in service.

    Raises:
        RateLimitedError: refused by the passive refresh pacing (the options
            ``passive_refresh_interval_secs`` / ``passive_refresh_daily_limit``, per kind) or
            WeCom's hourly limit; the current ticket stays in service.
        InvalidArgumentError, UnknownAppError, WeChatError, NetworkError, ProtocolError,
            StoreError: as for :func:`ticket`.
    """
    if stale_ticket is None:
        raise InvalidArgumentError("invalidate_ticket needs the ticket the page was signed with")
    st = _lib.wx_ticket_invalidate(_encode(appid, "appid"), _encode(kind, "kind"),
                                   _encode(stale_ticket, "stale_ticket"))
    if st != _OK:
        raise last_error_for(st)


def jssdk_config(appid: str, url: str, kind: TicketKind = "jsapi") -> Dict[str, str]:
    """What a page passes to ``wx.config`` (``kind="jsapi"``: ``appId``, ``timestamp``,
    ``nonceStr``, ``signature``; for a WeCom id ``appId`` is its corpid) or to WeCom's
    ``wx.agentConfig`` (``kind="agent_config"``: ``corpid``, ``agentid``, ``timestamp``,
    ``nonceStr``, ``signature``), as a dict of strings. ``url`` is the page's full URL (what
    ``location.href`` says; the engine cuts it at ``'#'``). Every call uses a fresh nonce from
    the OS's CSPRNG and the current time. Add your own ``jsApiList`` before rendering it.

    Raises:
        InvalidArgumentError: a bad argument, an empty URL or one with control characters,
            ``"wx_card"`` (use :func:`card_signature`), or ``"agent_config"`` without the
            ``agentid`` option.
        UnknownAppError, RateLimitedError, WeChatError, NetworkError, ProtocolError,
            StoreError: as for :func:`ticket`.
    """
    st, raw = _ffi.read_sized(_lib.wx_jssdk_config, _encode(appid, "appid"),
                              _ffi.JSSDK_CONFIG_MAX_LEN + 1, _encode(kind, "kind"), _encode(url, "url"))
    if st != _OK:
        raise last_error_for(st)
    return json.loads(raw.decode("utf-8"))  # type: ignore[no-any-return]


def jssdk_signature(ticket: str, noncestr: str, timestamp: Union[int, str], url: str) -> str:
    """WeChat's JS-SDK signature: lowercase hex ``sha1("jsapi_ticket=" ticket "&noncestr="
    noncestr "&timestamp=" timestamp "&url=" url)``, values raw (no URL-encoding), ``url`` cut
    at its first ``'#'``. Pure: no I/O, no registration. Most servers want :func:`jssdk_config`.

    Raises:
        InvalidArgumentError: an argument is not a str (``timestamp`` may be an int) or holds NUL.
    """
    ts = str(timestamp) if isinstance(timestamp, int) and not isinstance(timestamp, bool) else timestamp
    out = _signature_buffer()
    st = _lib.wx_jssdk_signature(_encode(ticket, "ticket"), _encode(noncestr, "noncestr"),
                                 _encode(ts, "timestamp"), _encode(url, "url"), out, len(out))
    if st != _OK:
        raise last_error_for(st)
    return out.value.decode("ascii")


def card_signature(values: Iterable[str]) -> str:
    """WeChat's ``cardSign``: lowercase hex SHA-1 of ``values`` (the ``wx_card`` ticket,
    timestamp, card_id, code, openid, nonce_str... whichever the page uses) sorted by their
    bytes and concatenated. Pure: no I/O.

    Raises:
        InvalidArgumentError: no values, more than 64, or one that is not a str / holds NUL.
    """
    if isinstance(values, (str, bytes)):
        raise InvalidArgumentError("card_signature takes a list of strings, not one string")
    encoded = [_encode(v, "values[%d]" % i) for i, v in enumerate(values)]
    arr = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
    out = _signature_buffer()
    st = _lib.wx_card_signature(arr, len(encoded), out, len(out))
    if st != _OK:
        raise last_error_for(st)
    return out.value.decode("ascii")


def _signature_buffer() -> Any:
    return ctypes.create_string_buffer(_ffi.SIGNATURE_LEN + 1)


async def ticket_async(appid: str, kind: TicketKind = "jsapi") -> str:
    """:func:`ticket` for asyncio: runs in the loop's default executor, one job per (id, kind)
    however many coroutines ask at once. Raises like ``ticket``."""
    _encode(appid, "appid")
    _encode(kind, "kind")
    return await _shared(("ticket", appid, kind), ticket, appid, kind)  # type: ignore[no-any-return]


async def jssdk_config_async(appid: str, url: str, kind: TicketKind = "jsapi") -> Dict[str, str]:
    """:func:`jssdk_config` for asyncio (in the executor; never shared between callers: each
    page gets its own nonce). Raises like ``jssdk_config``."""
    _encode(appid, "appid")
    _encode(url, "url")
    _encode(kind, "kind")
    return await asyncio.get_running_loop().run_in_executor(None, jssdk_config, appid, url, kind)
