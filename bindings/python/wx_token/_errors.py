"""Exceptions raised by wx_token: one class per library status, under ``WxTokenError``.

Every exception carries the library's ``status`` number, WeChat's ``errcode`` (0 when the
failure did not come from WeChat) and the library's message ``errmsg``. None of them ever
contains the AppSecret: the library never puts it in a message, and the binding never
echoes its arguments into one.
"""

from typing import Dict, Optional, Type

from . import _ffi

__all__ = [
    "WxTokenError",
    "InvalidArgumentError",
    "UnknownAppError",
    "WeChatError",
    "NetworkError",
    "ProtocolError",
    "StoreError",
    "InternalError",
    "RateLimitedError",
]


class WxTokenError(Exception):
    """Base class of every error the library reports.

    Attributes:
        status: the library's status number (see the ``STATUS_*`` constants).
        errcode: WeChat's errcode for a ``WeChatError`` (e.g. 40125 for a wrong secret),
            otherwise usually 0.
        errmsg: the library's message describing the failure (never contains the secret).
        wechat_errmsg: WeChat's own errmsg, verbatim, for a ``WeChatError``; else ``""``.
    """

    #: The status number this class stands for (the base class: none in particular).
    STATUS = -1

    status: int
    errcode: int
    errmsg: str
    wechat_errmsg: str

    def __init__(self, errmsg: str, errcode: int = 0, status: Optional[int] = None,
                 wechat_errmsg: str = "") -> None:
        st = self.STATUS if status is None else status
        super().__init__(st, errcode, errmsg)
        self.status = st
        self.errcode = errcode
        self.errmsg = errmsg
        self.wechat_errmsg = wechat_errmsg

    @property
    def status_name(self) -> str:
        """The library's name of ``status``, e.g. ``"WECHAT_ERROR"``."""
        return _ffi.status_name(self.status)

    def __str__(self) -> str:
        text = "%s: %s" % (self.status_name, self.errmsg)
        if self.errcode:
            text += " (errcode %d)" % self.errcode
        return text

    def __repr__(self) -> str:
        return "%s(status=%d, errcode=%d, errmsg=%r)" % (
            type(self).__name__,
            self.status,
            self.errcode,
            self.errmsg,
        )

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Picklable (multiprocessing sends exceptions between processes).
        return (_rebuild, (type(self), self.errmsg, self.errcode, self.status, self.wechat_errmsg))


def _rebuild(cls: "Type[WxTokenError]", errmsg: str, errcode: int, status: int,
             wechat_errmsg: str = "") -> "WxTokenError":
    return cls(errmsg, errcode, status, wechat_errmsg)


class InvalidArgumentError(WxTokenError, ValueError):
    """A bad argument: empty or over-long appid, non-UTF-8 text, unknown option..."""

    STATUS = _ffi.INVALID_ARGUMENT


class UnknownAppError(WxTokenError, LookupError):
    """The appid was never registered in this process."""

    STATUS = _ffi.UNKNOWN_APP


class WeChatError(WxTokenError):
    """WeChat answered a nonzero errcode (``errcode`` holds it: 40125 wrong secret,
    40013 unknown appid, 45009 quota, -1 busy...)."""

    STATUS = _ffi.WECHAT_ERROR


class NetworkError(WxTokenError):
    """Connect, TLS, timeout, redirect or non-2xx HTTP status."""

    STATUS = _ffi.NETWORK


class ProtocolError(WxTokenError):
    """WeChat's response was not understood: bad JSON, missing fields, too large..."""

    STATUS = _ffi.PROTOCOL


class StoreError(WxTokenError):
    """A shared token store failed."""

    STATUS = _ffi.STORE


class InternalError(WxTokenError):
    """An internal bug was caught at the library's boundary (status PANIC); please report."""

    STATUS = _ffi.PANIC


class RateLimitedError(WxTokenError):
    """Refused locally to stay within WeChat's limits (a forced refresh at most once per
    30 s and 20 times a day per app); the current token stays in service."""

    STATUS = _ffi.RATE_LIMITED


_BY_STATUS: Dict[int, "Type[WxTokenError]"] = {
    cls.STATUS: cls
    for cls in (
        InvalidArgumentError,
        UnknownAppError,
        WeChatError,
        NetworkError,
        ProtocolError,
        StoreError,
        InternalError,
        RateLimitedError,
    )
}


def error_for(status: int, errcode: int, errmsg: str, wechat_errmsg: str = "") -> WxTokenError:
    """The exception for a failed call's status, errcode and messages."""
    cls = _BY_STATUS.get(status, WxTokenError)
    return cls(errmsg, errcode, status, wechat_errmsg)


def last_error_for(status: int) -> WxTokenError:
    """The exception for a call that just returned ``status`` on this thread."""
    errcode, errmsg, wechat_errmsg = _ffi.last_error()
    return error_for(status, errcode, errmsg, wechat_errmsg)
