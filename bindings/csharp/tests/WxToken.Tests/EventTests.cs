using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using NUnit.Framework;

namespace WxToken.Tests
{
    // WxAccessToken.Events against the real engine: what an operator sees while WeChat refuses a refresh and while the
    // Redis store is down. Events are process-wide; each test looks only at its own app's.
    [TestFixture]
    public class EventTests : FakeFixture
    {
        sealed class Seen
        {
            public WxTokenEvent Event;
            public string TokenServedInside; // what Get answered from inside the handler, or null if it threw
        }

        sealed class Collector : IDisposable
        {
            readonly List<Seen> seen = new List<Seen>();
            readonly EventHandler<WxTokenEvent> handler;

            public Collector(string app)
            {
                handler = (sender, e) =>
                {
                    if (e.AppId != app) return;
                    var s = new Seen { Event = e };
                    // Re-entrancy: a handler may call back into the library.
                    try { s.TokenServedInside = WxAccessToken.Get(app); } catch (WxTokenException) { }
                    lock (seen) seen.Add(s);
                };
                WxAccessToken.Events += handler;
            }

            public List<Seen> All { get { lock (seen) return seen.ToList(); } }

            public bool WaitFor(string kind, int seconds)
            {
                var deadline = DateTime.UtcNow.AddSeconds(seconds);
                while (DateTime.UtcNow < deadline)
                {
                    if (All.Any(s => s.Event.Kind == kind)) return true;
                    Thread.Sleep(20);
                }
                return false;
            }

            public string Describe() { return string.Join("\n", All.Select(s => s.Event.ToString())); }

            public void Dispose() { WxAccessToken.Events -= handler; }
        }

        [SetUp]
        public void DefaultLevel() { WxAccessToken.EventLevel = WxEventLevel.Information; }

        static void AssertNoSecrets(IEnumerable<Seen> seen, params string[] secrets)
        {
            foreach (var s in seen)
                foreach (var secret in secrets)
                {
                    StringAssert.DoesNotContain(secret, s.Event.Message, s.Event.Kind);
                    StringAssert.DoesNotContain(secret, s.Event.ToString(), s.Event.Kind);
                }
        }

        [Test]
        public void RefreshFailingWith40164_IsReportedWhileTheTokenIsStillServed()
        {
            Fake.Post("/_fake/config", "{\"lifetime_secs\":4}");
            try
            {
                const string secret = "ev-secret-40164-zz";
                string app = Fake.AddApp(FakeWeChat.NewAppId("ev40164"), secret);
                WxTokenOptions o = Fake.Options();
                o.RefreshAheadSecs = 3;
                o.ErrorCooldownMs = 400;
                WxAccessToken.Register(app, secret, o);
                using (var events = new Collector(app))
                {
                    string token = WxAccessToken.Get(app);
                    Fake.Fault(app, "errcode", 1000, ",\"errcode\":40164,\"errmsg\":\"invalid ip 203.0.113.9, not in whitelist\"");
                    Assert.IsTrue(events.WaitFor(WxEventKind.TokenExpired, 12), events.Describe());
                    var seen = events.All;

                    Assert.AreEqual(WxEventKind.TokenFetched, seen[0].Event.Kind, events.Describe());
                    Assert.AreEqual(WxEventLevel.Information, seen[0].Event.Level);

                    Seen failed = seen.First(s => s.Event.Kind == WxEventKind.RefreshFailed);
                    Assert.AreEqual(WxEventLevel.Warning, failed.Event.Level);
                    Assert.AreEqual(WxStatus.WeChatError, failed.Event.Status);
                    Assert.AreEqual(40164, failed.Event.ErrCode);
                    Assert.AreEqual(app, failed.Event.AppId);
                    Assert.AreEqual(token, failed.TokenServedInside, "reported while the token is still in service");

                    Seen expired = seen.First(s => s.Event.Kind == WxEventKind.TokenExpired);
                    Assert.AreEqual(WxEventLevel.Error, expired.Event.Level);
                    Assert.AreEqual(40164, expired.Event.ErrCode);
                    Assert.Less(seen.IndexOf(failed), seen.IndexOf(expired), "warned before it expired");
                    AssertNoSecrets(seen, secret, token);
                }
                Assert.AreEqual(40164, Assert.Throws<WxTokenException>(() => WxAccessToken.Get(app)).ErrCode);
            }
            finally
            {
                Fake.Post("/_fake/config", "{\"lifetime_secs\":7200}");
            }
        }

        [Test]
        public void StoreOutageAndRecovery_AreReported()
        {
            using (var redis = new RedisServer())
            {
                const string secret = "ev-secret-store-zz";
                string app = Fake.AddApp(FakeWeChat.NewAppId("evstore"), secret);
                WxTokenOptions o = Fake.Options();
                o.Store = redis.Url;
                o.StoreSyncMs = 100;
                WxAccessToken.Register(app, secret, o);
                using (var events = new Collector(app))
                {
                    string token = WxAccessToken.Get(app);
                    redis.Stop();
                    Assert.IsTrue(events.WaitFor(WxEventKind.StoreUnavailable, 10), "outage: " + events.Describe());
                    Assert.AreEqual(token, WxAccessToken.Get(app), "the valid token keeps serving during the outage");
                    redis.Start();
                    Assert.IsTrue(events.WaitFor(WxEventKind.StoreRecovered, 10), "recovery: " + events.Describe());
                    var seen = events.All;
                    Seen down = seen.First(s => s.Event.Kind == WxEventKind.StoreUnavailable);
                    Assert.AreEqual(WxEventLevel.Warning, down.Event.Level);
                    Assert.AreEqual(WxStatus.Store, down.Event.Status);
                    Assert.AreEqual(WxEventLevel.Information, seen.First(s => s.Event.Kind == WxEventKind.StoreRecovered).Event.Level);
                    AssertNoSecrets(seen, secret, token);
                }
            }
        }

        [Test]
        public void AThrowingHandler_NeverReachesTheEngine_AndOthersStillRun()
        {
            string app = Fake.AddApp(FakeWeChat.NewAppId("evthrow"), "s");
            int thrown = 0;
            EventHandler<WxTokenEvent> bad = (sender, e) =>
            {
                if (e.AppId != app) return;
                Interlocked.Increment(ref thrown);
                throw new InvalidOperationException("a broken logger");
            };
            WxAccessToken.Events += bad;
            try
            {
                using (var events = new Collector(app))
                {
                    WxAccessToken.Register(app, "s", Fake.Options());
                    string token = WxAccessToken.Get(app);     // token_fetched, raised on this thread inside the engine
                    WxAccessToken.Invalidate(app, token);      // and again, for the replacement
                    Assert.AreNotEqual(token, WxAccessToken.Get(app));
                    Assert.AreEqual(2, thrown);
                    Assert.AreEqual(2, events.All.Count(s => s.Event.Kind == WxEventKind.TokenFetched), events.Describe());
                }
            }
            finally
            {
                WxAccessToken.Events -= bad;
            }
        }

        [Test]
        public void EventLevel_FiltersBelowIt()
        {
            string app = Fake.AddApp(FakeWeChat.NewAppId("evlevel"), "s");
            WxAccessToken.Register(app, "s", Fake.Options());
            using (var events = new Collector(app))
            {
                WxAccessToken.EventLevel = WxEventLevel.Warning;
                WxAccessToken.Get(app);
                Assert.IsEmpty(events.All, "token_fetched is Information");
                Fake.Fault(app, "quota");
                WxAccessToken.EventLevel = WxEventLevel.Information;
                Assert.Throws<WxTokenException>(() => WxAccessToken.ForceRefresh(app));
                Assert.IsTrue(events.WaitFor(WxEventKind.RefreshFailed, 5), events.Describe());
                Assert.AreEqual(45009, events.All.First(s => s.Event.Kind == WxEventKind.RefreshFailed).Event.ErrCode);
            }
        }
    }
}
