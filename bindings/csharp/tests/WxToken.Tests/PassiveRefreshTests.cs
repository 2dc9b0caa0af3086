using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace WxToken.Tests
{
    [TestFixture]
    public class PassiveRefreshTests : FakeFixture
    {
        [Test]
        public void RevokedToken_FailsOnceWith40001_ThenSucceedsAfterOneRetry()
        {
            string app = Fake.NewApp("pr_revoked");
            string stale = WxAccessToken.Get(app);
            Fake.Revoke(stale);
            int calls = 0;
            string body = WxAccessToken.Call(app, t => { calls++; return Fake.ApiCall(t); });
            StringAssert.Contains("ip_list", body);
            Assert.AreEqual(2, calls);
            Assert.AreEqual(2, Fake.TokenRequests(app));
            Assert.AreNotEqual(stale, WxAccessToken.Get(app));
        }

        [Test]
        public void ExpiredToken_42001_IsRefreshedToo()
        {
            string app = Fake.NewApp("pr_expired");
            WxAccessToken.Get(app);
            Fake.Expire(app);
            int calls = 0;
            string body = WxAccessToken.Call(app, t => { calls++; return Fake.ApiCall(t); });
            StringAssert.Contains("ip_list", body);
            Assert.AreEqual(2, calls);
        }

        [Test]
        public void AlwaysFailing_RetriesOnceAndReturnsTheSecondFailure()
        {
            string app = Fake.NewApp("pr_always");
            int calls = 0;
            string body = WxAccessToken.Call(app, t => { calls++; return "{\"errcode\":40001,\"errmsg\":\"invalid credential\"}"; });
            Assert.AreEqual(40001, WxAccessToken.ErrCodeOf(body));
            Assert.AreEqual(2, calls, "one retry, no loop");
            Assert.AreEqual(2, Fake.TokenRequests(app), "one invalidation");
        }

        [Test]
        public void OtherErrcodes_AreNotRetried()
        {
            string app = Fake.NewApp("pr_other");
            int calls = 0;
            int code = WxAccessToken.Call(app, t => { calls++; return 45009; }, r => r);
            Assert.AreEqual(45009, code);
            Assert.AreEqual(1, calls);
            Assert.AreEqual(1, Fake.TokenRequests(app));
        }

        [Test]
        public void TypedResult_40014_IsRetriedWithTheNewToken()
        {
            string app = Fake.NewApp("pr_typed");
            string first = WxAccessToken.Get(app);
            var seen = new System.Collections.Generic.List<string>();
            int code = WxAccessToken.Call(app, t => { seen.Add(t); return seen.Count == 1 ? 40014 : 0; }, r => r);
            Assert.AreEqual(0, code);
            Assert.AreEqual(2, seen.Count);
            Assert.AreEqual(first, seen[0]);
            Assert.AreNotEqual(first, seen[1]);
        }

        [Test]
        public async Task Async_RevokedToken_SucceedsAfterOneRetry()
        {
            string app = Fake.NewApp("pr_async");
            Fake.Revoke(await WxAccessToken.GetAsync(app));
            int calls = 0;
            string body = await WxAccessToken.CallAsync(app, t => { Interlocked.Increment(ref calls); return Task.Run(() => Fake.ApiCall(t)); });
            StringAssert.Contains("ip_list", body);
            Assert.AreEqual(2, calls);
        }

        [Test]
        public async Task Async_AlwaysFailing_DoesNotLoop()
        {
            string app = Fake.NewApp("pr_async_always");
            int calls = 0;
            string body = await WxAccessToken.CallAsync(app, t => { calls++; return Task.FromResult("{\"errcode\":42001}"); });
            Assert.AreEqual(42001, WxAccessToken.ErrCodeOf(body));
            Assert.AreEqual(2, calls);
        }

        [Test]
        public void ConcurrentCallers_WithOneRevokedToken_CauseOneFetch()
        {
            string app = Fake.NewApp("pr_conc");
            Fake.Revoke(WxAccessToken.Get(app));
            var tasks = new Task<string>[32];
            for (int i = 0; i < tasks.Length; i++)
                tasks[i] = Task.Factory.StartNew(() => WxAccessToken.Call(app, Fake.ApiCall), TaskCreationOptions.LongRunning);
            Task.WaitAll(tasks);
            foreach (var t in tasks) StringAssert.Contains("ip_list", t.Result);
            Assert.AreEqual(2, Fake.TokenRequests(app));
        }
    }
}
