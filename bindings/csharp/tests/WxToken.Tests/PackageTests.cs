using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using NUnit.Framework;

namespace WxToken.Tests
{
    // The NuGet package built by pack.sh (WX_PKG_FILE), and the example built against it alone and laid out as a
    // restored app's output (WX_PKG_APP, one per runtime; test.sh's build_package).
    [TestFixture]
    public class PackageTests : FakeFixture
    {
        static string Env(string name)
        {
            string v = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(v)) Assert.Fail(name + " is not set (test.sh sets it)");
            return v;
        }

        [Test]
        public void Package_HasTheNuGetLayoutAndMetadata()
        {
            using (ZipArchive zip = ZipFile.OpenRead(Env("WX_PKG_FILE")))
            {
                var names = zip.Entries.Select(e => e.FullName).ToList();
                foreach (string required in new[] { "WxToken.nuspec", "[Content_Types].xml", "_rels/.rels", "lib/netstandard2.0/WxToken.dll",
                    "lib/netstandard2.0/WxToken.xml", "runtimes/linux-x64/native/libwx_token.so", "build/WxToken.targets", "README.md" })
                    CollectionAssert.Contains(names, required);
                Assert.IsFalse(names.Any(n => n.Contains("win-") || n.EndsWith(".dylib") || n.EndsWith("wx_token.dll")), "only what was built: " + string.Join(", ", names));

                // Read as text: loading XML aborts CoreCLR 3.1 here ("No usable version of libssl": Debian 12 has OpenSSL 3 only).
                string nuspec = Text(zip, "WxToken.nuspec");
                Assert.AreEqual("WxToken", Element(nuspec, "id"));
                Assert.AreEqual(WxAccessToken.EngineVersion, Element(nuspec, "version"), "the package and the engine it carries");
                Assert.IsNotEmpty(Element(nuspec, "authors"));
                Assert.IsNotEmpty(Element(nuspec, "description"));
                StringAssert.Contains("<license type=\"expression\">MIT OR Apache-2.0</license>", nuspec);
                StringAssert.IsMatch("<repository type=\"git\" url=\"https://[^\"]+\"", nuspec);
                StringAssert.Contains("<group targetFramework=\".NETStandard2.0\" />", nuspec);
                StringAssert.Contains(@"runtimes\*\native\*", Text(zip, "build/WxToken.targets"));

                string so = Path.Combine(Path.GetTempPath(), "wx-cs-pkg-" + Guid.NewGuid().ToString("N") + ".so");
                zip.GetEntry("runtimes/linux-x64/native/libwx_token.so").ExtractToFile(so);
                try
                {
                    string sections = Run("readelf", "-S -W " + so);
                    StringAssert.Contains(".dynsym", sections);
                    StringAssert.DoesNotContain(".debug_info", sections, "stripped");
                    StringAssert.DoesNotContain(".symtab", sections, "stripped");
                    StringAssert.Contains("wx_token_get", Run("readelf", "--dyn-syms -W " + so), "the C ABI is still exported");
                }
                finally
                {
                    File.Delete(so);
                }
            }
        }

        [Test]
        public void AnAppBuiltAgainstThePackageAlone_RunsOnThisRuntime()
        {
            string app = Env("WX_PKG_APP");
            string appId = Fake.AddApp(FakeWeChat.NewAppId("pkg"), "pkg-secret");
            var env = new Dictionary<string, string> { { "WX_APPID", appId }, { "WX_SECRET", "pkg-secret" }, { "WX_API_BASE", Fake.BaseUrl } };
            int exit;
            // No WX_TOKEN_LIB, no LD_LIBRARY_PATH: the engine must come from the package's runtimes/linux-x64/native/.
            string output = ChildProcess.Run(Path.Combine(app, "GetAccessToken.exe"), null, null, env, out exit);
            Assert.AreEqual(0, exit, output);
            StringAssert.Contains("(136 chars)", output);
            StringAssert.Contains("ip_list", output);
            Assert.AreEqual(1, Fake.TokenRequests(appId));
        }

        static string Text(ZipArchive zip, string name)
        {
            using (var r = new StreamReader(zip.GetEntry(name).Open())) return r.ReadToEnd();
        }

        static string Element(string xml, string name)
        {
            var m = System.Text.RegularExpressions.Regex.Match(xml, "<" + name + ">([^<]*)</" + name + ">");
            Assert.IsTrue(m.Success, "<" + name + "> in the nuspec");
            return m.Groups[1].Value;
        }

        static string Run(string file, string args)
        {
            var psi = new ProcessStartInfo(file, args) { UseShellExecute = false, RedirectStandardOutput = true };
            using (var p = Process.Start(psi))
            {
                string output = p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                Assert.AreEqual(0, p.ExitCode, file + " " + args);
                return output;
            }
        }
    }
}
