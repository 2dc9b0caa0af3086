"""Typed hints for ``register``'s ``**options``: one key per engine option.

The engine exports the list of its options (``wx_token_options_schema``); the test suite reads
it through the library and fails when a key is missing here, so a new engine option cannot be
forgotten by this binding. Values are passed to the engine as JSON; it validates them and
rejects unknown keys with :class:`InvalidArgumentError`.
"""

import json
from typing import Any, Dict, Literal, TypedDict

from . import _ffi

__all__ = ["Options", "options_schema"]


class Options(TypedDict, total=False):
    """Every option of ``wx_token.register(appid, secret, **options)``; all optional.

    The defaults and meanings are the engine's (``wx_token.options_schema()`` returns them).
    """

    #: WeChat's API base URL; https, or http only to a loopback host. Default
    #: ``"https://api.weixin.qq.com"``.
    api_base: str
    #: ``"stable"`` (default; several processes never overwrite each other's token) or
    #: ``"classic"`` (``/cgi-bin/token``; a single process only).
    endpoint: Literal["stable", "classic"]
    #: ``"mp"`` (default: Official Account / Mini Program) or ``"wecom"`` (the id is a label of
    #: one WeCom corp secret; tokens from ``qyapi.weixin.qq.com``).
    platform: Literal["mp", "wecom"]
    #: WeCom: the corp's id (required with ``platform="wecom"``).
    corpid: str
    #: WeCom: the app's agentid, for ``wx.agentConfig`` (``agent_config`` tickets).
    agentid: int
    #: Refresh this many seconds before expiry (default 300).
    refresh_ahead_secs: int
    #: Timeout of one upstream request (default 5000).
    timeout_ms: int
    #: First backoff after a transient failure (default 500); doubles up to ``retry_max_ms``.
    retry_min_ms: int
    #: Longest backoff after transient failures (default 60000).
    retry_max_ms: int
    #: How long a terminal WeChat error is answered from memory (default 30000).
    error_cooldown_ms: int
    #: Where the token is shared: ``"memory"`` (default), ``"file:/abs/dir"``,
    #: ``"redis://[user:pass@]host:port/db"`` or ``"rediss://..."``.
    store: str
    #: Prefix of the shared store's keys (default ``"wx_token:"``; needs ``store``).
    store_prefix: str
    #: A shared store's refresh lease (default 10000, or twice ``timeout_ms`` if larger).
    lease_ms: int
    #: How often a process re-reads a shared store (default 10000).
    store_sync_ms: int
    #: Direct fetches per hour allowed while the shared store is down (default 2).
    store_fallback_per_hour: int
    #: Client mode: the wx-tokend server's base URL (then ``secret`` is ``None``).
    central: str
    #: Client mode: this client's key for the central server (never logged).
    central_key: str


def options_schema() -> Dict[str, Dict[str, Any]]:
    """The engine's own description of every option: ``{key: {"type", "default",
    "meaning"}}`` (``type`` is ``"string"`` or ``"integer"``; a ``None`` default means off
    unless set, or derived as the meaning says)."""
    raw = _ffi.lib.wx_token_options_schema()
    return json.loads(raw.decode("utf-8"))  # type: ignore[no-any-return]
