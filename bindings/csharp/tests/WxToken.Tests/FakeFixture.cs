using NUnit.Framework;

namespace WxToken.Tests
{
    // One fake WeChat per fixture class, started before its tests and killed after them.
    public abstract class FakeFixture
    {
        protected FakeWeChat Fake;

        [TestFixtureSetUp]
        public void StartFake() { Fake = new FakeWeChat(); }

        [TestFixtureTearDown]
        public void StopFake() { if (Fake != null) Fake.Dispose(); Fake = null; }
    }
}
