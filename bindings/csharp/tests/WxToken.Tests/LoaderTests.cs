using System;
using System.Diagnostics;
using System.IO;
using NUnit.Framework;

namespace WxToken.Tests
{
    // The library is already loaded in this process, so each case runs a small app (WxProbe.exe + WxToken.dll,
    // built by test.sh for the current runtime) in a fresh process, from a temporary directory laid out as the case needs.
    [TestFixture]
    public class LoaderTests
    {
        string realLib, probeDir, work;

        [TestFixtureSetUp]
        public void Locate()
        {
            realLib = Environment.GetEnvironmentVariable("WX_TOKEN_LIB");
            probeDir = Environment.GetEnvironmentVariable("WX_PROBE_DIR");
            if (string.IsNullOrEmpty(probeDir) || !File.Exists(Path.Combine(probeDir, "WxProbe.exe")))
                throw new InvalidOperationException("WX_PROBE_DIR must hold WxProbe.exe (test.sh sets it)");
            work = Path.Combine(Path.GetTempPath(), "wx-probe-" + Process.GetCurrentProcess().Id);
        }

        [TestFixtureTearDown]
        public void Clean() { try { Directory.Delete(work, true); } catch { } }

        string Layout(string name, string libRelative)
        {
            string dir = Path.Combine(work, name);
            Directory.CreateDirectory(dir);
            foreach (var f in Directory.GetFiles(probeDir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), true);
            if (libRelative != null)
            {
                string dst = Path.Combine(dir, libRelative);
                Directory.CreateDirectory(Path.GetDirectoryName(dst));
                File.Copy(realLib, dst, true);
            }
            return dir;
        }

        static string Run(string dir, string envLib, string arg, out int exit)
        {
            return ChildProcess.Run(Path.Combine(dir, "WxProbe.exe"), arg == null ? null : "\"" + arg + "\"", envLib, null, out exit);
        }

        [Test]
        public void Missing_Library_ListsEveryPathSearched()
        {
            string dir = Layout("bare", null);
            int exit;
            string output = Run(dir, null, null, out exit);
            Assert.AreEqual(3, exit, output);
            StringAssert.Contains("ERR WxTokenLibraryNotFoundException NativeLibraryNotFound", output);
            StringAssert.Contains(Path.Combine(dir, "libwx_token.so"), output);
            StringAssert.Contains(Path.Combine(dir, "runtimes", "linux-x64", "native", "libwx_token.so"), output);
            StringAssert.Contains("default probing", output);
            StringAssert.Contains("WX_TOKEN_LIB", output, "the message says how to fix it");
        }

        [Test]
        public void Missing_ExplicitPath_IsNamedAndNotSilentlyReplaced()
        {
            string dir = Layout("explicit_missing", "libwx_token.so");
            int exit;
            string output = Run(dir, "/nonexistent/libwx_token.so", null, out exit);
            Assert.AreEqual(3, exit, output);
            StringAssert.Contains("/nonexistent/libwx_token.so (WX_TOKEN_LIB)", output);
            StringAssert.Contains("no such file", output);
        }

        [Test]
        public void Found_NextToTheAssembly()
        {
            string dir = Layout("next", "libwx_token.so");
            int exit;
            string output = Run(dir, null, null, out exit);
            Assert.AreEqual(0, exit, output);
            StringAssert.StartsWith("OK ", output);
            StringAssert.Contains(Path.Combine(dir, "libwx_token.so"), output);
        }

        [Test]
        public void Found_InRuntimesRidNative()
        {
            string dir = Layout("rid", Path.Combine("runtimes", "linux-x64", "native", "libwx_token.so"));
            int exit;
            string output = Run(dir, null, null, out exit);
            Assert.AreEqual(0, exit, output);
            StringAssert.Contains(Path.Combine(dir, "runtimes", "linux-x64", "native", "libwx_token.so"), output);
        }

        [Test]
        public void Found_ViaEnvironmentVariable()
        {
            string dir = Layout("env", null);
            int exit;
            string output = Run(dir, realLib, null, out exit);
            Assert.AreEqual(0, exit, output);
            StringAssert.Contains(Path.GetFullPath(realLib), output);
        }

        [Test]
        public void Found_ViaPathProperty()
        {
            string dir = Layout("prop", null);
            int exit;
            string output = Run(dir, null, realLib, out exit);
            Assert.AreEqual(0, exit, output);
            StringAssert.Contains(Path.GetFullPath(realLib), output);
        }
    }
}
