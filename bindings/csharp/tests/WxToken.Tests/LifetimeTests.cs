using System.Threading;
using NUnit.Framework;

namespace WxToken.Tests
{
    // Each test runs its own fake with a special configuration (short lifetimes, long tokens).
    [TestFixture]
    public class LifetimeTests
    {
        [Test]
        public void BackgroundRefresh_IsSeenByTheManagedCache()
        {
            using (var fake = new FakeWeChat("--lifetime 2", "--overlap 1"))
            {
                string app = fake.NewApp("bg");
                string a = WxAccessToken.Get(app);
                Thread.Sleep(1600); // the engine refreshes at half the lifetime (1 s)
                string b = WxAccessToken.Get(app);
                Assert.AreNotEqual(a, b, "the generation counter moved, so the cached instance was dropped");
                Assert.AreEqual(fake.Current(app), b);
                StringAssert.Contains("ip_list", fake.ApiCall(b));
            }
        }

        [Test]
        public void ExpiredToken_IsNeverHandedOut_WhenRefreshKeepsFailing()
        {
            using (var fake = new FakeWeChat("--lifetime 2", "--overlap 1"))
            {
                string app = fake.NewApp("deadline");
                string a = WxAccessToken.Get(app);
                fake.Fault(app, "busy", 1000);
                Thread.Sleep(2300);
                var e = Assert.Throws<WxTokenException>(() => WxAccessToken.Get(app));
                Assert.AreEqual(-1, e.ErrCode);
                Assert.IsNotNull(a);
            }
        }

        [Test]
        public void Tokens_Of512Bytes_RoundTrip()
        {
            using (var fake = new FakeWeChat("--token-len 512"))
            {
                string app = fake.NewApp("len512");
                string token = WxAccessToken.Get(app);
                Assert.AreEqual(512, token.Length);
                Assert.AreEqual(fake.Current(app), token);
                Assert.AreSame(token, WxAccessToken.Get(app));
                StringAssert.Contains("ip_list", WxAccessToken.Call(app, fake.ApiCall));
            }
        }

        [Test]
        public void Tokens_Over512Bytes_AreProtocolErrors()
        {
            using (var fake = new FakeWeChat("--token-len 513"))
            {
                string app = fake.NewApp("len513");
                var e = Assert.Throws<WxTokenException>(() => WxAccessToken.Get(app));
                Assert.AreEqual(WxStatus.Protocol, e.Status);
            }
        }
    }
}
