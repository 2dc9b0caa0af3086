"""Per-app counters from the engine (``wx_token_stats_json``) as a typed object."""

import dataclasses
import json
from typing import Any, Dict, Optional, Tuple

from . import _ffi
from ._errors import last_error_for

__all__ = ["Stats", "FailureCount", "stats"]

_STATUS_BY_NAME = {_ffi.status_name(n): n for n in range(0, 64) if _ffi.status_name(n) != "UNKNOWN"}


@dataclasses.dataclass(frozen=True)
class FailureCount:
    """How many fetches (or store operations) failed with one status and errcode."""

    #: The library's status name, e.g. ``"WECHAT_ERROR"``, ``"NETWORK"``, ``"STORE"``.
    status_name: str
    #: WeChat's errcode, or 0.
    errcode: int
    count: int

    @property
    def status(self) -> int:
        """The status number (``STATUS_*``), or -1 for a name this binding does not know."""
        return _STATUS_BY_NAME.get(self.status_name, -1)


_STORE_COUNTERS = ("store_failures", "store_publish_failures", "fallback_fetches",
                   "store_records_rejected")


@dataclasses.dataclass(frozen=True)
class Stats:
    """One app's counters since it was registered in this process."""

    #: Requests sent upstream (WeChat, or the central server in client mode), background
    #: refreshes included.
    fetches: int
    #: Time spent in those requests, in seconds.
    fetch_seconds_total: float
    #: Duration of the last request, in seconds; None before the first.
    last_fetch_seconds: Optional[float]
    #: Tokens taken over from a shared store (published by another process) instead of
    #: fetching.
    tokens_from_store: int
    #: Failed fetches and store operations, by status and errcode.
    failures: Tuple[FailureCount, ...]
    #: Shared-store operations that failed (unreachable, refused, not writable), publishes
    #: and lease releases included (0 with the memory store, or on an engine that does not
    #: count them).
    store_failures: int = 0
    #: Of those, failed publishes, publish preparations and lease checks or releases.
    store_publish_failures: int = 0
    #: Direct fetches made while the store was unreachable (within the
    #: ``store_fallback_per_hour`` budget).
    fallback_fetches: int = 0
    #: Records read from the store and refused by validation (then replaced).
    store_records_rejected: int = 0

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "Stats":
        last = data.get("last_fetch_seconds")
        return cls(
            fetches=int(data["fetches"]),
            fetch_seconds_total=float(data["fetch_seconds_total"]),
            last_fetch_seconds=None if last is None else float(last),
            tokens_from_store=int(data["tokens_from_store"]),
            failures=tuple(
                FailureCount(str(f["status"]), int(f["errcode"]), int(f["count"]))
                for f in data.get("failures", ())
            ),
            **{k: int(data.get(k, 0)) for k in _STORE_COUNTERS},
        )


def stats_json(appid: bytes) -> Dict[str, Any]:
    """The engine's stats JSON for ``appid``, decoded."""
    st, raw = _ffi.read_sized(_ffi.lib.wx_token_stats_json, appid, 1024)
    if st != _ffi.OK:
        raise last_error_for(st)
    return json.loads(raw.decode("utf-8"))  # type: ignore[no-any-return]


def stats(appid: str) -> Stats:
    """``appid``'s counters since it was registered in this process (never does I/O).

    Raises:
        UnknownAppError: ``appid`` was never registered in this process.
    """
    from ._client import _encode

    return Stats.from_json(stats_json(_encode(appid, "appid")))
