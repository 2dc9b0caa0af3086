"""Options and stats parity with the engine: every key of the engine's options schema
(wx_token_options_schema, read through the library) has a typed hint in wx_token.Options, and
every field of wx_token_stats_json has a field in wx_token.Stats."""

import dataclasses
import typing

import pytest

import wx_token
from wx_token import _stats

#: The schema's JSON types -> the Python types the hints must use.
JSON_TYPES = {"string": (str,), "integer": (int,), "boolean": (bool,)}


def _hint_types(hint: object) -> tuple:
    if typing.get_origin(hint) is typing.Literal:
        return tuple({type(v) for v in typing.get_args(hint)})
    return (hint,)


def test_every_engine_option_has_a_typed_hint() -> None:
    schema = wx_token.options_schema()
    assert len(schema) >= 14 and "api_base" in schema and "central_key" in schema
    hints = typing.get_type_hints(wx_token.Options)
    missing = sorted(set(schema) - set(hints))
    assert not missing, "options the engine accepts but wx_token.Options lacks: %s" % missing
    stale = sorted(set(hints) - set(schema))
    assert not stale, "wx_token.Options has keys the engine does not accept: %s" % stale
    for key, entry in schema.items():
        assert entry["type"] in JSON_TYPES, (key, entry)
        assert entry["meaning"], key
        for t in _hint_types(hints[key]):
            assert t in JSON_TYPES[entry["type"]], "%s: hint %r, engine type %s" % (key, hints[key], entry["type"])
        if entry["default"] is not None:
            assert isinstance(entry["default"], JSON_TYPES[entry["type"]]), (key, entry)


def test_every_documented_default_is_accepted_by_register() -> None:
    """The schema's defaults, passed back as options, register cleanly: the hints, the
    schema and the parser agree on names and types."""
    schema = wx_token.options_schema()
    options = {k: e["default"] for k, e in schema.items() if e["default"] is not None}
    options.pop("store_prefix", None)  # needs a store other than memory
    wx_token.register("wxpy_schema_defaults", "secret", **options)  # type: ignore[arg-type]


def test_stats_is_typed_and_covers_every_engine_field(fake, new_app) -> None:
    appid = new_app("stats")
    s0 = wx_token.stats(appid)
    assert s0 == wx_token.Stats(0, 0.0, None, 0, ()) or s0.fetches == 0
    fake.fault(appid=appid, kind="errcode", errcode=45009, errmsg="quota", count=1)
    with pytest.raises(wx_token.WeChatError):
        wx_token.get(appid)
    import time

    time.sleep(0.4)  # past the cooldown
    wx_token.get(appid)
    s = wx_token.stats(appid)
    assert isinstance(s, wx_token.Stats)
    assert s.fetches == 2 and s.fetch_seconds_total > 0 and s.last_fetch_seconds is not None
    assert s.failures == (wx_token.FailureCount("WECHAT_ERROR", 45009, 1),)
    assert s.failures[0].status == wx_token.STATUS_WECHAT_ERROR
    raw = _stats.stats_json(appid.encode())
    fields = {f.name for f in dataclasses.fields(wx_token.Stats)}
    assert set(raw) <= fields, "engine stats the binding does not expose: %s" % sorted(set(raw) - fields)
    with pytest.raises(wx_token.UnknownAppError):
        wx_token.stats("wxpy_never_registered_stats")
