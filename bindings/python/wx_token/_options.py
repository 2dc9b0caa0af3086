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
    #: ``"redis://[user:pass@]host:port/db"``, ``"rediss://..."``,
    #: ``"redis+sentinel://host:port[,...]/service[/db]"`` or ``"redis+cluster://host:port[,...]"``.
    store: str
    #: Prefix of the shared store's keys (default ``"wx_token:"``; needs ``store``).
    store_prefix: str
    #: A shared store's refresh lease (default 10000, or twice ``timeout_ms`` if larger).
    lease_ms: int
    #: How often a process re-reads a shared store (default 10000).
    store_sync_ms: int
    #: Direct fetches per app per hour for the whole host while the shared store is down
    #: (default 2; stable endpoint only, never with classic).
    store_fallback_per_hour: int
    #: TLS Redis store: absolute path of a PEM CA bundle to trust instead of the public roots.
    store_tls_ca_file: str
    #: TLS Redis store: absolute path of a PEM client certificate (with ``store_tls_key_file``).
    store_tls_cert_file: str
    #: TLS Redis store: absolute path of that certificate's PEM private key.
    store_tls_key_file: str
    #: Least seconds between two fetches started by invalidating the current token (default 30;
    #: 0: no spacing); within it ``invalidate`` raises :class:`RateLimitedError`.
    passive_refresh_interval_secs: int
    #: Most such fetches per app in any 24 hours (default 100).
    passive_refresh_daily_limit: int
    #: Client mode: the wx-tokend servers' base URLs, comma-separated, failed over in order
    #: (then ``secret`` is ``None``).
    central: str
    #: Client mode: this client's key for the central server (never logged).
    central_key: str
    #: Process-wide: threads running background refreshes (default 8; the largest value
    #: any registration gave).
    refresh_workers: int
    #: Process-wide, per upstream: background refreshes per second (default 50; the lowest
    #: value any registration for that upstream gave).
    refresh_rate_per_sec: int


def options_schema() -> Dict[str, Dict[str, Any]]:
    """The engine's own description of every option: ``{key: {"type", "default",
    "meaning"}}`` (``type`` is ``"string"`` or ``"integer"``; a ``None`` default means off
    unless set, or derived as the meaning says)."""
    raw = _ffi.lib.wx_token_options_schema()
    return json.loads(raw.decode("utf-8"))  # type: ignore[no-any-return]
