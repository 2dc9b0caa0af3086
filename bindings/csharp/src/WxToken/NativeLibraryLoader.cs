using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace WxToken
{
    // Finds the engine before the first P/Invoke and preloads it by absolute path.
    //
    // Why a preload rather than relying on DllImport probing: probing only looks next to the assembly and in system
    // paths, not in runtimes/<rid>/native/ (outside a NuGet-restored app) nor at a path the user chose. dlopen with
    // RTLD_GLOBAL makes a later dlopen("libwx_token.so") by the runtime match the library's SONAME, on Mono and
    // CoreCLR alike; Windows matches an already-loaded module by its base name. On CoreCLR a DllImportResolver (set
    // through reflection: the type is not in netstandard2.0) also returns the handle, which does not need a SONAME.
    //
    // Mono binds a P/Invoke when the calling method is JIT-compiled and caches a failure, so every extern is called
    // from a [NoInlining] method in NativeCalls that runs only after Ensure() has returned.
    internal static class NativeLibraryLoader
    {
        static readonly object Gate = new object();
        static volatile bool loaded;
        static IntPtr handle;
        internal static string LoadedFrom;

        internal static void Ensure()
        {
            if (!loaded) EnsureSlow();
        }

        static void EnsureSlow()
        {
            lock (Gate)
            {
                if (loaded) return;
                var searched = new List<string>();
                var failures = new StringBuilder();
                string explicitPath = WxTokenLibrary.Path;
                string source = "WxTokenLibrary.Path";
                if (string.IsNullOrEmpty(explicitPath))
                {
                    explicitPath = Environment.GetEnvironmentVariable(WxTokenLibrary.EnvironmentVariable);
                    source = WxTokenLibrary.EnvironmentVariable;
                }
                if (!string.IsNullOrEmpty(explicitPath))
                {
                    // An explicit choice is the only candidate: silently falling back to another copy would hide a
                    // misconfiguration (and load a different engine version than the one asked for).
                    string full = System.IO.Path.GetFullPath(explicitPath);
                    searched.Add(full + " (" + source + ")");
                    if (!File.Exists(full)) failures.Append("  ").Append(full).Append(": no such file\n");
                    else if (TryPreload(full, failures)) { Finish(full); return; }
                    throw NotFound(searched, failures, null);
                }

                foreach (string candidate in Candidates())
                {
                    searched.Add(candidate);
                    if (File.Exists(candidate) && TryPreload(candidate, failures)) { Finish(candidate); return; }
                }
                searched.Add("the runtime's default probing for \"" + NativeMethods.Lib + "\" (" + DefaultProbing() + ")");
                try
                {
                    NativeCalls.Probe();
                }
                catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException || e is BadImageFormatException)
                {
                    throw NotFound(searched, failures, e);
                }
                Finish(null);
            }
        }

        static void Finish(string from)
        {
            LoadedFrom = from;
            loaded = true;
        }

        static WxTokenLibraryNotFoundException NotFound(List<string> searched, StringBuilder failures, Exception inner)
        {
            var m = new StringBuilder();
            m.Append("The native wx_token library (").Append(FileName).Append(" for ").Append(Rid)
             .Append(") could not be loaded. Searched, in order:\n");
            foreach (var s in searched) m.Append("  ").Append(s).Append('\n');
            if (failures.Length > 0) m.Append("Load errors:\n").Append(failures);
            if (inner != null) m.Append("Default probing: ").Append(inner.GetType().Name).Append(": ").Append(inner.Message).Append('\n');
            m.Append("Build it with `cargo build --release -p wx_token`, then put it next to WxToken.dll, or set ")
             .Append(WxTokenLibrary.EnvironmentVariable).Append(" or WxTokenLibrary.Path to its absolute path.");
            return new WxTokenLibraryNotFoundException(searched.AsReadOnly(), m.ToString(), inner);
        }

        static IEnumerable<string> Candidates()
        {
            var dirs = new List<string>();
            string asmDir = null;
            try
            {
                string loc = typeof(NativeLibraryLoader).Assembly.Location;
                if (!string.IsNullOrEmpty(loc)) asmDir = System.IO.Path.GetDirectoryName(loc);
            }
            catch (NotSupportedException) { }
            if (asmDir != null) dirs.Add(asmDir);
            string baseDir = AppDomain.CurrentDomain.BaseDirectory;
            if (!string.IsNullOrEmpty(baseDir))
            {
                baseDir = baseDir.TrimEnd(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar);
                if (!dirs.Contains(baseDir)) dirs.Add(baseDir);
            }
            foreach (var d in dirs)
            {
                yield return System.IO.Path.Combine(d, FileName);
                yield return System.IO.Path.Combine(d, "runtimes", Rid, "native", FileName);
            }
        }

        static string DefaultProbing()
        {
            if (IsWindows) return "the application directory, PATH and the system directories";
            if (IsMac) return "DYLD_LIBRARY_PATH and the system directories";
            return "LD_LIBRARY_PATH, /etc/ld.so.cache and the system directories";
        }

        internal static readonly bool IsWindows = RuntimeInformation.IsOSPlatform(OSPlatform.Windows);
        internal static readonly bool IsMac = RuntimeInformation.IsOSPlatform(OSPlatform.OSX);

        internal static string FileName
        {
            get { return IsWindows ? "wx_token.dll" : IsMac ? "libwx_token.dylib" : "libwx_token.so"; }
        }

        internal static string Rid
        {
            get
            {
                string os = IsWindows ? "win" : IsMac ? "osx" : "linux";
                string arch;
                switch (RuntimeInformation.ProcessArchitecture)
                {
                    case Architecture.X86: arch = "x86"; break;
                    case Architecture.Arm: arch = "arm"; break;
                    case Architecture.Arm64: arch = "arm64"; break;
                    default: arch = "x64"; break;
                }
                return os + "-" + arch;
            }
        }

        static bool TryPreload(string path, StringBuilder failures)
        {
            string error;
            IntPtr h = IsWindows ? Win.Load(path, out error) : Unix.Load(path, IsMac, out error);
            if (h == IntPtr.Zero)
            {
                failures.Append("  ").Append(path).Append(": ").Append(error).Append('\n');
                return false;
            }
            handle = h;
            InstallCoreClrResolver();
            try
            {
                NativeCalls.Probe();
                return true;
            }
            catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException)
            {
                failures.Append("  ").Append(path).Append(": loaded, but the runtime did not bind to it (")
                        .Append(e.Message).Append("); is its SONAME libwx_token.so?\n");
                return false;
            }
        }

        // NativeLibrary.SetDllImportResolver(assembly, (name, asm, path) => name == "wx_token" ? handle : 0),
        // by reflection: NativeLibrary exists on .NET Core 3.0+ only, and netstandard2.0 cannot name it.
        static void InstallCoreClrResolver()
        {
            try
            {
                var nativeLibrary = Type.GetType("System.Runtime.InteropServices.NativeLibrary", false);
                var resolverType = Type.GetType("System.Runtime.InteropServices.DllImportResolver", false);
                if (nativeLibrary == null || resolverType == null) return;
                var set = nativeLibrary.GetMethod("SetDllImportResolver", new[] { typeof(Assembly), resolverType });
                var target = typeof(NativeLibraryLoader).GetMethod("Resolve", BindingFlags.NonPublic | BindingFlags.Static);
                if (set == null || target == null) return;
                set.Invoke(null, new object[] { typeof(NativeLibraryLoader).Assembly, Delegate.CreateDelegate(resolverType, target) });
            }
            catch (TargetInvocationException) { } // a resolver was set already: the preload alone still works
        }

        static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
        {
            return name == NativeMethods.Lib ? handle : IntPtr.Zero;
        }

        static byte[] Z(string s) { var b = Encoding.UTF8.GetBytes(s + "\0"); return b; }

        static class Unix
        {
            [DllImport("libdl.so.2", EntryPoint = "dlopen")] static extern IntPtr dlopen_linux(byte[] file, int mode);
            [DllImport("libdl.so.2", EntryPoint = "dlerror")] static extern IntPtr dlerror_linux();
            [DllImport("/usr/lib/libSystem.dylib", EntryPoint = "dlopen")] static extern IntPtr dlopen_mac(byte[] file, int mode);
            [DllImport("/usr/lib/libSystem.dylib", EntryPoint = "dlerror")] static extern IntPtr dlerror_mac();

            [MethodImpl(MethodImplOptions.NoInlining)]
            internal static IntPtr Load(string path, bool mac, out string error)
            {
                error = null;
                try
                {
                    // RTLD_NOW | RTLD_GLOBAL
                    IntPtr h = mac ? dlopen_mac(Z(path), 0x2 | 0x8) : dlopen_linux(Z(path), 0x2 | 0x100);
                    if (h == IntPtr.Zero) error = Utf8.FromCString(mac ? dlerror_mac() : dlerror_linux()) ?? "dlopen failed";
                    return h;
                }
                catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException)
                {
                    error = "cannot call dlopen: " + e.Message;
                    return IntPtr.Zero;
                }
            }
        }

        static class Win
        {
            [DllImport("kernel32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
            static extern IntPtr LoadLibraryW(string path);

            [MethodImpl(MethodImplOptions.NoInlining)]
            internal static IntPtr Load(string path, out string error)
            {
                IntPtr h = LoadLibraryW(path);
                error = h == IntPtr.Zero ? "LoadLibrary failed with Win32 error " + Marshal.GetLastWin32Error() : null;
                return h;
            }
        }
    }
}
