using System;
using System.Collections.Generic;
using System.Diagnostics;
using NUnit.Framework;

namespace WxToken.Tests
{
    // Runs a .NET exe built by test.sh for the runtime running the tests (mono X.exe, or dotnet X.exe with its
    // runtimeconfig.json), with a clean library environment: no LD_LIBRARY_PATH, WX_TOKEN_LIB only when given.
    public static class ChildProcess
    {
        public static string Run(string exe, string args, string envLib, IDictionary<string, string> env, out int exit)
        {
            bool mono = Type.GetType("Mono.Runtime") != null;
            string host = Process.GetCurrentProcess().MainModule.FileName;
            var psi = new ProcessStartInfo(host, "\"" + exe + "\"" + (args == null ? "" : " " + args))
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = "/",
            };
            psi.EnvironmentVariables.Remove("LD_LIBRARY_PATH");
            psi.EnvironmentVariables.Remove("WX_TOKEN_LIB");
            if (envLib != null) psi.EnvironmentVariables["WX_TOKEN_LIB"] = envLib;
            if (env != null) foreach (var kv in env) psi.EnvironmentVariables[kv.Key] = kv.Value;
            if (!mono) psi.EnvironmentVariables["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";
            using (var p = Process.Start(psi))
            {
                var err = p.StandardError.ReadToEndAsync();
                string output = p.StandardOutput.ReadToEnd();
                Assert.IsTrue(p.WaitForExit(60000), exe + " hung");
                exit = p.ExitCode;
                return output + err.Result;
            }
        }
    }
}
