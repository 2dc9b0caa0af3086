using System;
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

        // What an SDK that throws on WeChat errors looks like (Senparc.Weixin's ErrorJsonResultException carries the
        // answer, with its errcode, in JsonResult).
        sealed class SdkErrorException : Exception
        {
            public readonly int ErrCode;
            public SdkErrorException(int errCode) : base("WeChat answered errcode " + errCode) { ErrCode = errCode; }
        }

        // The SDK call: the business API through the fake, throwing on any errcode.
        string SdkCall(string token)
        {
            string json = Fake.ApiCall(token);
            int code = WxAccessToken.ErrCodeOf(json);
            if (code != 0) throw new SdkErrorException(code);
            return json;
        }

        static int ErrCodeOfSdkException(Exception e)
        {
            var sdk = e as SdkErrorException;
            return sdk == null ? 0 : sdk.ErrCode;
        }

        [Test]
        public void ARejectionThrownByAnSdk_IsFoundByTheExtractor_AndRetriedOnce()
        {
            string app = Fake.NewApp("pr_sdk");
            string stale = WxAccessToken.Get(app);
            Fake.Revoke(stale);
            int calls = 0;
            string body = WxAccessToken.Call(app, t => { calls++; return SdkCall(t); }, null, ErrCodeOfSdkException);
            StringAssert.Contains("ip_list", body);
            Assert.AreEqual(2, calls);
            Assert.AreNotEqual(stale, WxAccessToken.Get(app));
        }

        [Test]
        public async Task Async_ARejectionInAFaultedTask_IsRetriedOnce()
        {
            string app = Fake.NewApp("pr_sdk_async");
            Fake.Revoke(await WxAccessToken.GetAsync(app));
            int calls = 0;
            string body = await WxAccessToken.CallAsync(app, t => { Interlocked.Increment(ref calls); return Task.Run(() => SdkCall(t)); },
                null, ErrCodeOfSdkException);
            StringAssert.Contains("ip_list", body);
            Assert.AreEqual(2, calls);
        }

        [Test]
        public void OtherExceptions_AndASecondRejection_PropagateUnchanged()
        {
            string app = Fake.NewApp("pr_sdk_other");
            int calls = 0;
            var other = new InvalidOperationException("not WeChat's");
            Assert.AreSame(other, Assert.Throws<InvalidOperationException>(() =>
                WxAccessToken.Call<string>(app, t => { calls++; throw other; }, null, ErrCodeOfSdkException)));
            Assert.AreEqual(1, calls, "an exception without a rejection is not retried");
            calls = 0;
            var e = Assert.Throws<SdkErrorException>(() =>
                WxAccessToken.Call<string>(app, t => { calls++; throw new SdkErrorException(40001); }, null, ErrCodeOfSdkException));
            Assert.AreEqual(40001, e.ErrCode);
            Assert.AreEqual(2, calls, "retried once, never looped");
            calls = 0;
            Assert.Throws<SdkErrorException>(() => WxAccessToken.Call<string>(app, t => { calls++; throw new SdkErrorException(40001); }, r => 0, null));
            Assert.AreEqual(1, calls, "without an extractor, exceptions are the caller's");
        }

        [Test]
        public void Stats_CountFetchesAndFailuresByErrcode()
        {
            string app = Fake.NewApp("stats");
            WxTokenStats before = WxAccessToken.GetStats(app);
            Assert.AreEqual(0, before.Fetches);
            Assert.IsNull(before.LastFetchTime);
            string token = WxAccessToken.Get(app);
            Fake.Fault(app, "quota");
            Assert.Throws<WxTokenException>(() => WxAccessToken.Invalidate(app, token));
            WxTokenStats s = WxAccessToken.GetStats(app);
            Assert.AreEqual(2, s.Fetches, "the failed attempt is a fetch too");
            Assert.IsNotNull(s.LastFetchTime);
            Assert.That(s.FetchTimeTotal, Is.GreaterThan(TimeSpan.Zero));
            Assert.AreEqual(1, s.Failures.Count, string.Join(", ", s.Failures));
            Assert.AreEqual(WxStatus.WeChatError, s.Failures[0].Status);
            Assert.AreEqual(45009, s.Failures[0].ErrCode);
            Assert.AreEqual(1, s.Failures[0].Count);
            Assert.AreEqual(WxStatus.UnknownApp, Assert.Throws<WxTokenException>(() => WxAccessToken.GetStats("wx_never_registered_stats")).Status);
        }
    }
}
