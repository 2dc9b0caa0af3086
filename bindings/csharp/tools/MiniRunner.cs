// MiniRunner: a tiny reflection-based runner for NUnit-2-style tests (C# 7.2, mcs-compatible).
// Works with NUnit 2.6.4's own nunit.framework.dll (which loads fine on CoreCLR 3.1) or with any
// shim defining the same attribute/exception type names: attributes are matched by *full name*.
//
// Usage:  <runner-or-test.exe> [assembly.dll ...] [--filter SUBSTRING] [--timeout SECONDS]
//   No assembly argument => scan the assembly containing this runner (compile it into the test exe).
// Prints one line per test, then "N passed, N failed[, N skipped]".
// Exit code: 0 all passed; 1 any failure (incl. fixture set-up/tear-down errors); 2 no test ran / bad usage.
// Semantics (NUnit 2.x): one fixture instance per class; [TestFixtureSetUp]/[OneTimeSetUp] once,
// [SetUp]/[TearDown] around each test (base class first for set-up, derived first for tear-down),
// tests in ordinal name order; [TestCase(args)] supported; [Ignore]/[Explicit] => skipped;
// Task-returning tests are awaited; AssertionException => failure, SuccessException => pass,
// IgnoreException/InconclusiveException => skipped, anything else => error (counted as failed).
using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Threading;
using System.Threading.Tasks;

namespace MiniRunner
{
    public static class Program
    {
        const string NS = "NUnit.Framework.";
        static int passed, failed, skipped;
        static string filter;
        static int timeoutSec = 300;

        public static int Main(string[] args)
        {
            var paths = new List<string>();
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i] == "--filter" && i + 1 < args.Length) filter = args[++i];
                else if (args[i] == "--timeout" && i + 1 < args.Length) timeoutSec = int.Parse(args[++i]);
                else if (args[i].StartsWith("--")) { Console.Error.WriteLine("unknown option " + args[i]); return 2; }
                else paths.Add(args[i]);
            }
            var assemblies = new List<Assembly>();
            if (paths.Count == 0) assemblies.Add(typeof(Program).Assembly);
            foreach (var p in paths) assemblies.Add(Assembly.LoadFrom(System.IO.Path.GetFullPath(p)));

            foreach (var asm in assemblies)
                foreach (var t in SafeTypes(asm).Where(IsFixture).OrderBy(t => t.FullName, StringComparer.Ordinal))
                    RunFixture(t);

            Console.WriteLine();
            Console.WriteLine(passed + " passed, " + failed + " failed" + (skipped > 0 ? ", " + skipped + " skipped" : ""));
            Console.Out.Flush();
            int rc = failed > 0 ? 1 : (passed == 0 ? 2 : 0);
            Environment.Exit(rc); // do not wait for stray foreground threads
            return rc;
        }

        static IEnumerable<Type> SafeTypes(Assembly a)
        {
            try { return a.GetTypes(); }
            catch (ReflectionTypeLoadException e) { return e.Types.Where(t => t != null); }
        }

        static bool Has(MemberInfo m, string shortName)
        {
            return m.GetCustomAttributes(true).Any(a => a.GetType().FullName == NS + shortName);
        }

        static IEnumerable<object> Attrs(MemberInfo m, string shortName)
        {
            return m.GetCustomAttributes(true).Where(a => a.GetType().FullName == NS + shortName);
        }

        static bool IsTestMethod(MethodInfo m) { return Has(m, "TestAttribute") || Has(m, "TestCaseAttribute"); }

        static bool IsFixture(Type t)
        {
            if (!t.IsClass || t.IsAbstract || t.ContainsGenericParameters) return false;
            return Has(t, "TestFixtureAttribute") || t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static).Any(IsTestMethod);
        }

        // methods carrying an attribute, base classes first
        static List<MethodInfo> Hooks(Type t, params string[] names)
        {
            var chain = new List<Type>();
            for (var c = t; c != null && c != typeof(object); c = c.BaseType) chain.Insert(0, c);
            var res = new List<MethodInfo>();
            foreach (var c in chain)
                foreach (var m in c.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
                    if (names.Any(n => Has(m, n))) res.Add(m);
            return res;
        }

        static void RunFixture(Type t)
        {
            var tests = new List<KeyValuePair<string, Func<object, object>>>();
            var ignored = new List<string>();
            foreach (var m in t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static).Where(IsTestMethod).OrderBy(m => m.Name, StringComparer.Ordinal))
            {
                string baseName = t.FullName + "." + m.Name;
                var mm = m;
                var cases = Attrs(m, "TestCaseAttribute").ToList();
                if (Has(m, "TestAttribute") && cases.Count == 0)
                    Add(tests, ignored, m, baseName, o => mm.Invoke(o, null));
                foreach (var c in cases)
                {
                    var argsProp = c.GetType().GetProperty("Arguments");
                    var a = (object[])(argsProp != null ? argsProp.GetValue(c, null) : new object[0]);
                    a = Coerce(m, a);
                    Add(tests, ignored, m, baseName + "(" + string.Join(",", a.Select(x => x == null ? "null" : x.ToString())) + ")", o => mm.Invoke(o, a));
                }
            }
            foreach (var n in ignored) { skipped++; Console.WriteLine("SKIP " + n); }
            if (tests.Count == 0) return;

            object inst = null;
            Exception fixtureError = null;
            try
            {
                if (!(t.IsAbstract && t.IsSealed)) inst = Activator.CreateInstance(t);
                foreach (var h in Hooks(t, "TestFixtureSetUpAttribute", "OneTimeSetUpAttribute")) Invoke(h, inst);
            }
            catch (Exception e) { fixtureError = Unwrap(e); }

            foreach (var test in tests)
            {
                if (fixtureError != null) { Report(test.Key, fixtureError, "fixture set-up failed: "); continue; }
                Exception err = null;
                var run = test.Value;
                // each test (set-up + body + tear-down) on its own background thread, so a hung test
                // is reported as failed after --timeout and cannot block the run
                var th = new Thread(() =>
                {
                    bool setUpOk = false;
                    try
                    {
                        foreach (var h in Hooks(t, "SetUpAttribute")) Invoke(h, inst);
                        setUpOk = true;
                        Await(run(inst));
                    }
                    catch (Exception e) { err = Unwrap(e); }
                    if (setUpOk)
                    {
                        var tds = Hooks(t, "TearDownAttribute"); tds.Reverse();
                        foreach (var h in tds)
                            try { Invoke(h, inst); } catch (Exception e) { if (err == null) err = Unwrap(e); }
                    }
                });
                th.IsBackground = true;
                th.Start();
                if (!th.Join(TimeSpan.FromSeconds(timeoutSec)))
                    err = new TimeoutException("test did not finish within " + timeoutSec + " s (--timeout)");
                Report(test.Key, err, "");
            }

            var ftds = Hooks(t, "TestFixtureTearDownAttribute", "OneTimeTearDownAttribute"); ftds.Reverse();
            foreach (var h in ftds)
                try { Invoke(h, inst); }
                catch (Exception e) { failed++; Console.WriteLine("FAIL " + t.FullName + " [fixture tear-down]: " + Describe(Unwrap(e))); }
            var d = inst as IDisposable;
            if (d != null) try { d.Dispose(); } catch { }
        }

        static void Add(List<KeyValuePair<string, Func<object, object>>> tests, List<string> ignored, MethodInfo m, string name, Func<object, object> run)
        {
            if (Has(m, "IgnoreAttribute") || Has(m, "ExplicitAttribute") || Has(m.ReflectedType, "IgnoreAttribute")) { ignored.Add(name); return; }
            if (filter != null && name.IndexOf(filter, StringComparison.Ordinal) < 0) return;
            tests.Add(new KeyValuePair<string, Func<object, object>>(name, run));
        }

        static object[] Coerce(MethodInfo m, object[] a)
        {
            var ps = m.GetParameters();
            if (a == null) a = new object[] { null };
            if (ps.Length != a.Length) return a;
            var r = new object[a.Length];
            for (int i = 0; i < a.Length; i++)
            {
                var pt = ps[i].ParameterType;
                r[i] = (a[i] != null && !pt.IsInstanceOfType(a[i]) && a[i] is IConvertible && !pt.IsEnum)
                    ? Convert.ChangeType(a[i], pt, System.Globalization.CultureInfo.InvariantCulture) : a[i];
            }
            return r;
        }

        static void Invoke(MethodInfo m, object inst) { Await(m.Invoke(m.IsStatic ? null : inst, null)); }

        static void Await(object result)
        {
            var task = result as Task;
            if (task == null) return;
            task.GetAwaiter().GetResult(); // rethrow the original exception, not AggregateException
        }

        static Exception Unwrap(Exception e)
        {
            while (true)
            {
                if (e is TargetInvocationException && e.InnerException != null) { e = e.InnerException; continue; }
                var ae = e as AggregateException;
                if (ae != null && ae.InnerExceptions.Count == 1) { e = ae.InnerExceptions[0]; continue; }
                return e;
            }
        }

        static string Describe(Exception e)
        {
            string n = e.GetType().FullName;
            if (n == NS + "AssertionException") return e.Message.Trim();
            return n + ": " + e.Message + (e.StackTrace == null ? "" : Environment.NewLine + e.StackTrace);
        }

        static void Report(string name, Exception e, string prefix)
        {
            string kind = e == null ? null : e.GetType().FullName;
            if (e == null || kind == NS + "SuccessException") { passed++; Console.WriteLine("PASS " + name); }
            else if (kind == NS + "IgnoreException" || kind == NS + "InconclusiveException") { skipped++; Console.WriteLine("SKIP " + name + ": " + e.Message); }
            else { failed++; Console.WriteLine("FAIL " + name + ": " + prefix + Describe(e).Replace("\n", "\n    ")); }
        }
    }
}
