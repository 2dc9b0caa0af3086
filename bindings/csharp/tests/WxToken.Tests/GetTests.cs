using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using NUnit.Framework;

namespace WxToken.Tests
{
    [TestFixture]
    public class GetTests : FakeFixture
    {
        [Test]
        public void Get_ReturnsTheTokenWeChatIssued()
        {
            string app = Fake.NewApp("get");
            string token = WxAccessToken.Get(app);
            Assert.AreEqual(Fake.Current(app), token);
            Assert.AreEqual(136, token.Length);
            Assert.AreEqual("{\"ip_list\":[\"127.0.0.1\"]}", Fake.ApiCall(token).Replace(" ", ""));
            Assert.AreEqual(1, Fake.TokenRequests(app));
        }

        [Test]
        public void CachedGet_ReturnsTheSameInstanceWithoutFetching()
        {
            string app = Fake.NewApp("cached");
            string first = WxAccessToken.Get(app);
            for (int i = 0; i < 1000; i++)
                Assert.AreSame(first, WxAccessToken.Get(app));
            Assert.AreEqual(1, Fake.TokenRequests(app));
        }

        [Test]
        public void StableEndpoint_Works()
        {
            string app = Fake.NewApp("stable", WxEndpoint.Stable);
            string token = WxAccessToken.Get(app);
            Assert.AreEqual(Fake.Current(app), token);
            Assert.AreEqual(1, Fake.Stat(app, "stable_requests"));
            Assert.AreEqual(0, Fake.Stat(app, "token_requests"));
        }

        [Test]
        public void SixtyFourConcurrentTasks_ShareOneFetch()
        {
            string app = Fake.NewApp("conc64");
            Fake.Fault(app, "slow", 1, ",\"delay_ms\":300");
            var go = new ManualResetEventSlim(false);
            var tasks = Enumerable.Range(0, 64).Select(i => Task.Factory.StartNew(() => { go.Wait(); return WxAccessToken.Get(app); },
                TaskCreationOptions.LongRunning)).ToArray();
            go.Set();
            Assert.IsTrue(Task.WaitAll(tasks, 20000));
            Assert.AreEqual(1, tasks.Select(t => t.Result).Distinct().Count());
            Assert.AreEqual(1, Fake.TokenRequests(app));
        }

        [Test]
        public async Task SixtyFourConcurrentGetAsync_ShareOneFetch()
        {
            string app = Fake.NewApp("async64");
            Fake.Fault(app, "slow", 1, ",\"delay_ms\":300");
            var tasks = Enumerable.Range(0, 64).Select(i => WxAccessToken.GetAsync(app)).ToArray();
            string[] tokens = await Task.WhenAll(tasks);
            Assert.AreEqual(1, tokens.Distinct().Count());
            Assert.AreEqual(Fake.Current(app), tokens[0]);
            Assert.AreEqual(1, Fake.TokenRequests(app));
            Assert.IsTrue(WxAccessToken.GetAsync(app).IsCompleted, "a cached token completes synchronously");
        }

        [Test]
        public void GetAsync_CancellationStopsTheWaitOnly()
        {
            string app = Fake.NewApp("cancel");
            Fake.Fault(app, "slow", 1, ",\"delay_ms\":600");
            var cts = new CancellationTokenSource(100);
            var t = WxAccessToken.GetAsync(app, cts.Token);
            var e = Assert.Catch<Exception>(() => t.GetAwaiter().GetResult());
            Assert.IsInstanceOf<OperationCanceledException>(e);
            string token = WxAccessToken.GetAsync(app).Result;
            Assert.AreEqual(Fake.Current(app), token);
            Assert.AreEqual(1, Fake.TokenRequests(app));
        }

        [Test]
        public void Invalidate_CurrentToken_FetchesAReplacement()
        {
            string app = Fake.NewApp("inval");
            string a = WxAccessToken.Get(app);
            WxAccessToken.Invalidate(app, a);
            Assert.AreEqual(2, Fake.TokenRequests(app), "the replacement is fetched before Invalidate returns");
            string b = WxAccessToken.Get(app);
            Assert.AreNotEqual(a, b);
            Assert.AreEqual(Fake.Current(app), b);
            Assert.AreEqual(2, Fake.TokenRequests(app));
        }

        [Test]
        public void Invalidate_AnOldToken_DoesNothing()
        {
            string app = Fake.NewApp("inval_old");
            string a = WxAccessToken.Get(app);
            WxAccessToken.Invalidate(app, a);
            string b = WxAccessToken.Get(app);
            WxAccessToken.Invalidate(app, a);
            WxAccessToken.Invalidate(app, "not-a-token-we-handed-out");
            Assert.AreSame(b, WxAccessToken.Get(app));
            Assert.AreEqual(2, Fake.TokenRequests(app));
        }

        [Test]
        public void Invalidate_ConcurrentReportsOfOneToken_FetchOnce()
        {
            string app = Fake.NewApp("inval_conc");
            string a = WxAccessToken.Get(app);
            var tasks = Enumerable.Range(0, 16).Select(i => Task.Factory.StartNew(() => WxAccessToken.Invalidate(app, a),
                TaskCreationOptions.LongRunning)).ToArray();
            Task.WaitAll(tasks);
            Assert.AreNotEqual(a, WxAccessToken.Get(app));
            Assert.AreEqual(2, Fake.TokenRequests(app));
        }

        [Test]
        public void Invalidate_StableToken_UsesOneForceRefreshThenRateLimited()
        {
            string app = Fake.NewApp("inval_stable", WxEndpoint.Stable);
            string a = WxAccessToken.Get(app);
            WxAccessToken.Invalidate(app, a); // normal mode hands back `a`, so the engine spends its force_refresh
            string b = WxAccessToken.Get(app);
            Assert.AreNotEqual(a, b);
            Assert.AreEqual(1, Fake.Stat(app, "force_requests"));
            var e = Assert.Throws<WxTokenException>(() => WxAccessToken.Invalidate(app, b));
            Assert.AreEqual(WxStatus.RateLimited, e.Status);
            Assert.AreEqual(0, e.ErrCode);
            Assert.AreSame(b, WxAccessToken.Get(app), "a refused refresh leaves the token in service");
        }

        [Test]
        public void ForceRefresh_IssuesANewToken_OncePer30s()
        {
            string app = Fake.NewApp("force");
            string a = WxAccessToken.Get(app);
            WxAccessToken.ForceRefresh(app);
            string b = WxAccessToken.Get(app);
            Assert.AreNotEqual(a, b);
            var e = Assert.Throws<WxTokenException>(() => WxAccessToken.ForceRefresh(app));
            Assert.AreEqual(WxStatus.RateLimited, e.Status);
            StringAssert.Contains(app, e.Message);
        }

        [Test]
        public void Reregister_WithNewSecret_DropsTheCachedToken()
        {
            string app = Fake.NewApp("resecret");
            string a = WxAccessToken.Get(app);
            Fake.AddApp(app, "new-secret");
            WxAccessToken.Register(app, "new-secret", Fake.Options());
            string b = WxAccessToken.Get(app);
            Assert.AreNotEqual(a, b);
            WxAccessToken.Register(app, "new-secret", Fake.Options());
            Assert.AreSame(b, WxAccessToken.Get(app), "same secret and upstream: the token survives");
        }

        [Test]
        public void Utf8_SecretsWithNonAsciiAndReservedCharacters()
        {
            string secret = "s+é&/ ü=测试%";
            string app = Fake.NewApp("utf8", WxEndpoint.Classic, secret);
            string token = WxAccessToken.Get(app);
            Assert.AreEqual(Fake.Current(app), token);
        }

        [Test]
        public void AppRegisteredElsewhereInTheProcess_IsServed()
        {
            // Registered through the raw C ABI (as another binding would): the engine is the source of truth.
            string app = Fake.AddApp(FakeWeChat.NewAppId("raw"), "s");
            WxTokenLibrary.Load();
            Assert.AreEqual(0, RawRegister(app, "s", Fake.Options().ToJson()));
            string token = WxAccessToken.Get(app);
            Assert.AreEqual(Fake.Current(app), token);
        }

        // Not inlined, so Mono binds the P/Invoke after WxTokenLibrary.Load() has preloaded the library.
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        static int RawRegister(string app, string secret, string json)
        {
            return NativeMethods.wx_token_register(Utf8.Z(app, "a"), Utf8.Z(secret, "s"), Utf8.Z(json, "o"));
        }

        [Test]
        public void EngineVersionAndStatusNames_MatchTheEnum()
        {
            StringAssert.IsMatch(@"^\d+\.\d+\.\d+", WxAccessToken.EngineVersion);
            foreach (WxStatus s in Enum.GetValues(typeof(WxStatus)))
            {
                if (s == WxStatus.NativeLibraryNotFound) continue;
                string expected = s == WxStatus.WeChatError ? "WECHAT_ERROR"
                    : string.Concat(s.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())).ToUpperInvariant();
                Assert.AreEqual(expected, WxAccessToken.StatusName((int)s), s.ToString());
            }
            Assert.AreEqual("UNKNOWN", WxAccessToken.StatusName(10), "a new engine status must be added to WxStatus");
        }
    }
}
