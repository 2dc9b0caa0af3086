"""Fixtures: the real fake-WeChat server process (one per session) and fresh apps.

Environment:
    WX_TOKEN_LIB  absolute path of libwx_token.so (default <repo>/target/debug/libwx_token.so)
    WX_FAKE_BIN   the wx-fake-wechat binary (default <repo>/target/debug/wx-fake-wechat)
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))

os.environ.setdefault("WX_TOKEN_LIB", os.path.join(REPO, "target", "debug", "libwx_token.so"))
FAKE_BIN = os.environ.get("WX_FAKE_BIN", os.path.join(REPO, "target", "debug", "wx-fake-wechat"))

# The source tree's package, not an installed one.
if PKG_ROOT not in sys.path:
    sys.path.insert(0, PKG_ROOT)

import wx_token  # noqa: E402

#: A distinctive secret marker: every app's secret contains it, and no exception text may.
SECRET_MARK = "Sx9-NEVER-LEAK-q7Zt"


def pytest_report_header(config: Any) -> List[str]:
    return [
        "wx_token library: %s (version %s)" % (wx_token.LIBRARY_PATH, wx_token.library_version()),
        "wx-fake-wechat: %s" % FAKE_BIN,
    ]


class Fake:
    """A running wx-fake-wechat process and its control API."""

    def __init__(self, proc: "subprocess.Popen[str]", base_url: str) -> None:
        self.proc = proc
        self.base_url = base_url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def stats(self) -> Dict[str, Any]:
        return self._call("GET", "/_fake/stats")  # type: ignore[no-any-return]

    def app_stats(self, appid: str) -> Dict[str, int]:
        return self.stats()["apps"].get(  # type: ignore[no-any-return]
            appid,
            {"token_requests": 0, "stable_requests": 0, "force_requests": 0, "issued": 0,
             "api_requests": 0, "faults_served": 0},
        )

    def token_fetches(self, appid: str) -> int:
        s = self.app_stats(appid)
        return s["token_requests"] + s["stable_requests"] + s["force_requests"]

    def add_app(self, appid: str, secret: str) -> None:
        self._call("POST", "/_fake/apps", {"appid": appid, "secret": secret})

    def fault(self, **fault: Any) -> None:
        self._call("POST", "/_fake/faults", fault)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_fake/faults")

    def config(self, **cfg: Any) -> Dict[str, Any]:
        return self._call("POST", "/_fake/config", cfg)  # type: ignore[no-any-return]

    def get_config(self) -> Dict[str, Any]:
        return self._call("GET", "/_fake/config")  # type: ignore[no-any-return]

    def revoke(self, token: str) -> None:
        self._call("POST", "/_fake/revoke", {"token": token})

    def expire(self, appid: str) -> None:
        self._call("POST", "/_fake/expire", {"appid": appid})

    def current(self, appid: str) -> str:
        q = urllib.parse.urlencode({"appid": appid})
        return self._call("GET", "/_fake/current?" + q)["access_token"]  # type: ignore[no-any-return]

    def api(self, token: str) -> Dict[str, Any]:
        """The business API: {"ip_list": [...]} for a valid token, else an errcode."""
        q = urllib.parse.urlencode({"access_token": token})
        with urllib.request.urlopen(self.base_url + "/cgi-bin/get_api_domain_ip?" + q, timeout=10) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def fake() -> Iterator[Fake]:
    if not os.path.isfile(FAKE_BIN):
        pytest.fail("wx-fake-wechat not found at %s (cargo build -p wx_fake)" % FAKE_BIN)
    proc = subprocess.Popen(
        [FAKE_BIN, "--listen", "127.0.0.1:0", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        prefix = "listening on "
        if not line.startswith(prefix):
            raise RuntimeError("unexpected first line from wx-fake-wechat: %r" % line)
        # Drain stdout so the server can never block on a full pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        f = Fake(proc, line[len(prefix):])
        f.default_config = f.get_config()  # type: ignore[attr-defined]
        yield f
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(autouse=True)
def _clean_fake(request: Any) -> Iterator[None]:
    """After each test that used the fake: no leftover faults, default config."""
    yield
    if "fake" in request.fixturenames:
        f = request.getfixturevalue("fake")
        f.clear_faults()
        cfg = dict(f.default_config)
        f.config(**{k: cfg[k] for k in ("lifetime_secs", "token_len", "overlap_secs", "delay_ms") if k in cfg})


_ids = itertools.count(1)


def fresh_appid(tag: str = "app") -> str:
    return "wxpy_%s_%d_%d" % (tag, os.getpid(), next(_ids))


def secret_for(appid: str) -> str:
    return "%s-%s" % (SECRET_MARK, appid[-6:])


class AppFactory:
    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def __call__(self, tag: str = "app", endpoint: str = "classic", register: bool = True,
                 secret: Optional[str] = None, **options: Any) -> str:
        appid = fresh_appid(tag)
        real_secret = secret_for(appid)
        self.fake.add_app(appid, real_secret)
        if register:
            opts: Dict[str, Any] = {
                "api_base": self.fake.base_url,
                "endpoint": endpoint,
                "retry_min_ms": 50,
                "retry_max_ms": 200,
                "error_cooldown_ms": 300,
                "timeout_ms": 3000,
            }
            opts.update(options)
            wx_token.register(appid, secret if secret is not None else real_secret, **opts)
        return appid


@pytest.fixture
def new_app(fake: Fake) -> AppFactory:
    """new_app(tag, endpoint="classic", **options) -> a fresh appid, known to the fake and
    registered with the engine (its secret contains SECRET_MARK)."""
    return AppFactory(fake)


def assert_no_secret(exc: BaseException) -> None:
    """The secret marker appears nowhere in the exception: str, repr, args, the formatted
    traceback (with chained exceptions)."""
    import traceback

    texts = [str(exc), repr(exc), repr(exc.args)]
    texts.extend(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for t in texts:
        assert SECRET_MARK not in t, t


# --- redis-server ------------------------------------------------------------------------------

REDIS_BIN = os.environ.get("WX_REDIS_SERVER") or shutil.which("redis-server") or "redis-server"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Redis:
    """A real redis-server on 127.0.0.1, stoppable and restartable on the same port (to
    make a store outage and its recovery)."""

    def __init__(self, workdir: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: "Optional[subprocess.Popen[bytes]]" = None

    @property
    def url(self) -> str:
        return "redis://127.0.0.1:%d/0" % self.port

    def start(self) -> None:
        if not os.path.isfile(REDIS_BIN) and shutil.which(REDIS_BIN) is None:
            pytest.fail("redis-server not found (apt-get install redis-server, or set WX_REDIS_SERVER)")
        self.proc = subprocess.Popen(
            [REDIS_BIN, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def redis(tmp_path: Any) -> Iterator[Redis]:
    r = Redis(str(tmp_path))
    r.start()
    try:
        yield r
    finally:
        r.stop()


# --- events ------------------------------------------------------------------------------------


class Events:
    """Collects the engine's events (installed with wx_token.set_event_handler at DEBUG)."""

    def __init__(self) -> None:
        self.seen: List[wx_token.Event] = []
        self.lock = threading.Lock()
        self.on_event: Optional[Any] = None

    def __call__(self, event: "wx_token.Event") -> None:
        with self.lock:
            self.seen.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def of(self, appid: str) -> List["wx_token.Event"]:
        with self.lock:
            return [e for e in self.seen if e.app == appid]

    def wait_for(self, appid: str, kind: str, timeout: float = 10.0) -> "wx_token.Event":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.of(appid):
                if e.kind == kind:
                    return e
            time.sleep(0.02)
        raise AssertionError("no %s event for %s within %.0f s: %r" % (kind, appid, timeout, self.of(appid)))


@pytest.fixture
def events() -> Iterator[Events]:
    import logging

    ev = Events()
    wx_token.set_event_handler(ev, logging.DEBUG)
    try:
        yield ev
    finally:
        wx_token.set_event_handler(None)
