"""Operator events from the engine (a refresh failing, a store outage and its end, a token
fetched...), delivered to Python.

By default every event at INFO or above goes to the ``logging`` logger ``"wx_token"`` at the
matching level (engine debug/info/warn/error -> DEBUG/INFO/WARNING/ERROR), with the event's
fields as ``extra`` attributes of the record: ``kind``, ``app``, ``status``, ``errcode``.
:func:`set_event_handler` sends them to a function of yours instead.

How it is wired: one ctypes callback (a ``CFUNCTYPE`` object kept alive in this module for as
long as the engine may call it) is registered with ``wx_set_event_callback``. The engine calls
it on its own threads (the background refresher) or inside a ``get`` that fetches; ctypes takes
the GIL for the call. The callback copies the event's strings (they live for the call only)
into an :class:`Event` and calls the handler. Anything the handler raises is caught here and
reported on the ``"wx_token"`` logger: an exception never crosses into the engine.
At interpreter exit the callback is removed before Python shuts down (the engine waits for a
call in progress), so no engine thread calls into a finalizing interpreter.
"""

import atexit
import logging
from ctypes import c_void_p
from typing import Any, Callable, NamedTuple, Optional

from . import _ffi
from ._errors import last_error_for

__all__ = ["Event", "EventHandler", "LOGGER_NAME", "set_event_handler", "log_event"]

#: The logger events go to by default.
LOGGER_NAME = "wx_token"

_logger = logging.getLogger(LOGGER_NAME)

# Engine level (wx_event.level, WX_LEVEL_*) -> logging level.
_TO_LOGGING = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR}
_LEVEL_NAMES = {0: "debug", 1: "info", 2: "warn", 3: "error"}


class Event(NamedTuple):
    """One operator event. Never contains a secret or a whole token (a token is named by its
    last 4 characters and its length)."""

    #: The engine's level: 0 debug, 1 info, 2 warn, 3 error.
    level: int
    #: The appid it concerns, or "" for a process-wide event.
    app: str
    #: A stable name to alert on: "token_fetched", "refresh_failed", "token_expired",
    #: "store_unavailable", "store_recovered", "fallback_fetch"... (new kinds may appear;
    #: treat unknown ones by their level).
    kind: str
    #: One human-readable line.
    message: str
    #: The library status of the failure reported (``STATUS_*``), 0 for good news.
    status: int
    #: WeChat's errcode (e.g. 40164, IP not whitelisted), or 0.
    errcode: int

    @property
    def level_name(self) -> str:
        """``"debug"``, ``"info"``, ``"warn"`` or ``"error"``."""
        return _LEVEL_NAMES.get(self.level, str(self.level))

    @property
    def logging_level(self) -> int:
        """The matching ``logging`` level (DEBUG, INFO, WARNING, ERROR)."""
        return _TO_LOGGING.get(self.level, logging.ERROR)


EventHandler = Callable[[Event], Any]


def log_event(event: Event) -> None:
    """The default handler: one record on the ``"wx_token"`` logger at the event's level,
    ``"<app> <kind>: <message>"``, with ``kind``, ``app``, ``status`` and ``errcode`` as
    attributes of the record (for structured formatters and filters)."""
    level = event.logging_level
    if _logger.isEnabledFor(level):
        _logger.log(
            level,
            "%s %s: %s",
            event.app or "-",
            event.kind,
            event.message,
            extra={"kind": event.kind, "app": event.app, "status": event.status,
                   "errcode": event.errcode},
        )


def _engine_level(level: int) -> int:
    """A ``logging`` level -> the lowest engine level it lets through."""
    if level >= logging.ERROR:
        return 3
    if level >= logging.WARNING:
        return 2
    if level >= logging.INFO:
        return 1
    return 0


_handler: EventHandler = log_event


def _text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _on_event(_user_data: Any, ptr: Any) -> None:
    # Runs on an engine thread. Nothing may escape: ctypes would print and swallow it, but a
    # handler's failure deserves a proper report, and the engine must never see it.
    handler = _handler
    try:
        e = ptr.contents
        event = Event(int(e.level), _text(e.app), _text(e.kind), _text(e.message),
                      int(e.status), int(e.errcode))
        handler(event)
    except BaseException:  # noqa: BLE001 - the boundary into the engine: catch everything
        try:
            _logger.exception("wx_token: the event handler %r raised; the event was dropped",
                              handler)
        except BaseException:  # noqa: BLE001 - even a broken logging setup stays on this side
            pass


# The CFUNCTYPE object: referenced from this module for the life of the process, so ctypes
# never frees the trampoline while the engine holds its address.
_C_CALLBACK = _ffi.EVENT_FN(_on_event)


def set_event_handler(handler: Optional[EventHandler] = None,
                      min_level: int = logging.INFO) -> None:
    """Sends the engine's events at or above ``min_level`` (a ``logging`` level) to
    ``handler(event)``; ``handler=None`` restores the default (the ``"wx_token"`` logger).

    The handler runs on an engine thread, possibly on several at once: keep it quick and
    thread-safe. It may call this library (``wx_token.get`` included). An exception it raises
    is logged on the ``"wx_token"`` logger and otherwise ignored. Debug events are off by
    default; ``set_event_handler(None, logging.DEBUG)`` turns them on for the logger.
    """
    global _handler
    if handler is not None and not callable(handler):
        raise TypeError("handler must be callable or None")
    # No lock of ours around this: the engine call waits for a callback in progress, and that
    # callback may itself be calling set_event_handler.
    _handler = log_event if handler is None else handler
    st = int(_ffi.lib.wx_set_event_callback(_C_CALLBACK, None, _engine_level(min_level)))
    if st != _ffi.OK:
        raise last_error_for(st)


def _remove_callback() -> None:
    # Waits for a callback in progress: after this no engine thread calls into Python.
    _ffi.lib.wx_set_event_callback(_ffi.EVENT_FN(), c_void_p(), 0)


set_event_handler(None)
atexit.register(_remove_callback)
