"""wx_token: get, cache and refresh WeChat access_tokens, safely under threads, forks and
many worker processes, through the wx-token engine (a shared library loaded with ctypes).

Quick start::

    import wx_token
    wx_token.register("wx1234567890", "your-app-secret")
    token = wx_token.get("wx1234567890")          # or: await wx_token.get_async(...)
    cfg = wx_token.jssdk_config("wx1234567890", page_url)   # a page's wx.config

See the package README for the full API.
"""

from ._version import __version__
from ._ffi import LIBRARY_PATH, TOKEN_MAX_LEN, library_version
from ._errors import (
    InternalError,
    InvalidArgumentError,
    NetworkError,
    ProtocolError,
    RateLimitedError,
    StoreError,
    UnknownAppError,
    WeChatError,
    WxTokenError,
)
from ._client import TokenInfo, force_refresh, get, invalidate, register, shutdown, token_info
from ._async import force_refresh_async, get_async, invalidate_async
from ._tickets import (
    TicketKind,
    card_signature,
    invalidate_ticket,
    jssdk_config,
    jssdk_config_async,
    jssdk_signature,
    ticket,
    ticket_async,
)
from ._events import LOGGER_NAME, Event, EventHandler, log_event, set_event_handler
from ._options import Options, options_schema
from ._stats import FailureCount, Stats, stats
from ._passive import (
    TOKEN_REJECTED_ERRCODES,
    call_with_token,
    call_with_token_async,
    passive_refresh,
    rejected_errcode,
)
from . import _ffi as _ffi_mod

# Status numbers (include/wx_token.h), stable and never reused.
STATUS_OK = _ffi_mod.OK
STATUS_INVALID_ARGUMENT = _ffi_mod.INVALID_ARGUMENT
STATUS_BUFFER_TOO_SMALL = _ffi_mod.BUFFER_TOO_SMALL
STATUS_UNKNOWN_APP = _ffi_mod.UNKNOWN_APP
STATUS_WECHAT_ERROR = _ffi_mod.WECHAT_ERROR
STATUS_NETWORK = _ffi_mod.NETWORK
STATUS_PROTOCOL = _ffi_mod.PROTOCOL
STATUS_STORE = _ffi_mod.STORE
STATUS_PANIC = _ffi_mod.PANIC
STATUS_RATE_LIMITED = _ffi_mod.RATE_LIMITED

__all__ = [
    "__version__",
    "LIBRARY_PATH",
    "TOKEN_MAX_LEN",
    "library_version",
    "register",
    "get",
    "token_info",
    "invalidate",
    "force_refresh",
    "get_async",
    "invalidate_async",
    "force_refresh_async",
    "shutdown",
    "TokenInfo",
    "ticket",
    "invalidate_ticket",
    "jssdk_config",
    "jssdk_signature",
    "card_signature",
    "ticket_async",
    "jssdk_config_async",
    "TicketKind",
    "Options",
    "options_schema",
    "Stats",
    "FailureCount",
    "stats",
    "Event",
    "EventHandler",
    "LOGGER_NAME",
    "log_event",
    "set_event_handler",
    "call_with_token",
    "call_with_token_async",
    "passive_refresh",
    "rejected_errcode",
    "TOKEN_REJECTED_ERRCODES",
    "WxTokenError",
    "InvalidArgumentError",
    "UnknownAppError",
    "WeChatError",
    "NetworkError",
    "ProtocolError",
    "StoreError",
    "InternalError",
    "RateLimitedError",
    "STATUS_OK",
    "STATUS_INVALID_ARGUMENT",
    "STATUS_BUFFER_TOO_SMALL",
    "STATUS_UNKNOWN_APP",
    "STATUS_WECHAT_ERROR",
    "STATUS_NETWORK",
    "STATUS_PROTOCOL",
    "STATUS_STORE",
    "STATUS_PANIC",
    "STATUS_RATE_LIMITED",
]
