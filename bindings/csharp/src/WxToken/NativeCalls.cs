using System;
using System.Runtime.CompilerServices;

namespace WxToken
{
    // The checked layer: each method makes one engine call and turns a failing status into a WxTokenException,
    // reading wx_last_errcode/wx_last_error_message right after the call, on the same thread, as the header requires.
    // [NoInlining] everywhere: see NativeLibraryLoader (Mono binds P/Invokes when the caller is compiled).
    internal static unsafe class NativeCalls
    {
        // Grown from the engine's reported length, never guessed; thread-local, so the slow path does not allocate one per call.
        [ThreadStatic] static byte[] tokenBuffer;

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void Probe()
        {
            NativeMethods.wx_token_version();
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string Version()
        {
            return Utf8.FromCString(NativeMethods.wx_token_version());
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string StatusName(int status)
        {
            return Utf8.FromCString(NativeMethods.wx_status_name(status));
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void Register(string appId, byte[] appIdZ, byte[] secretZ, byte[] optionsZ)
        {
            int st = NativeMethods.wx_token_register(appIdZ, secretZ, optionsZ);
            if (st != 0) throw Failure(st, appId, "register");
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static IntPtr GenerationCounter(string appId, byte[] appIdZ)
        {
            IntPtr counter;
            int st = NativeMethods.wx_token_generation_counter(appIdZ, out counter);
            if (st != 0) throw Failure(st, appId, "get");
            return counter;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string GetEx(string appId, byte[] appIdZ, out ulong generation, out ulong expiresInMs)
        {
            byte[] buf = tokenBuffer ?? (tokenBuffer = new byte[256]);
            while (true)
            {
                UIntPtr len;
                int st;
                fixed (byte* p = buf)
                    st = NativeMethods.wx_token_get_ex(appIdZ, p, (UIntPtr)buf.Length, out len, out generation, out expiresInMs);
                if (st == 0) return Utf8.Decode(buf, (int)len);
                if (st != (int)WxStatus.BufferTooSmall) throw Failure(st, appId, "get");
                // The token may change between the two calls, hence the loop.
                buf = tokenBuffer = new byte[(int)len + 1];
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void Invalidate(string appId, byte[] appIdZ, byte[] staleZ)
        {
            int st = NativeMethods.wx_token_invalidate(appIdZ, staleZ);
            if (st != 0) throw Failure(st, appId, staleZ == null ? "force refresh" : "invalidate");
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string StatsJson(string appId, byte[] appIdZ)
        {
            var buf = new byte[512];
            while (true)
            {
                UIntPtr len;
                int st;
                fixed (byte* p = buf)
                    st = NativeMethods.wx_token_stats_json(appIdZ, p, (UIntPtr)buf.Length, out len);
                if (st == 0) return Utf8.Decode(buf, (int)len);
                if (st != (int)WxStatus.BufferTooSmall) throw Failure(st, appId, "stats");
                buf = new byte[(int)len + 1]; // a failure may be recorded between the two calls, hence the loop
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string OptionsSchema()
        {
            return Utf8.FromCString(NativeMethods.wx_token_options_schema());
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void SetEventCallback(NativeMethods.EventFn fn, int minLevel)
        {
            int st = NativeMethods.wx_set_event_callback(fn, IntPtr.Zero, minLevel);
            if (st != 0) throw Failure(st, null, "set event callback");
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void Shutdown()
        {
            NativeMethods.wx_token_shutdown();
        }

        // Must run before any other engine call on this thread.
        internal static WxTokenException Failure(int status, string appId, string operation)
        {
            int errcode = NativeMethods.wx_last_errcode();
            string message = LastText(false);
            string errmsg = LastText(true);
            var s = (WxStatus)status;
            string name = Enum.IsDefined(typeof(WxStatus), s) ? s.ToString() : "status " + status;
            string text = "wx_token " + operation + (appId != null ? " for " + appId : "") + " failed (" + name + "): " + message;
            return new WxTokenException(s, errcode, errmsg.Length == 0 ? null : errmsg, appId, text);
        }

        // This thread's last engine message, or WeChat's own errmsg (wx_last_wechat_errmsg).
        static string LastText(bool wechatErrmsg)
        {
            int n = (int)Read(wechatErrmsg, null, 0);
            if (n == 0) return "";
            var buf = new byte[n + 1];
            fixed (byte* p = buf)
                n = Math.Min(n, (int)Read(wechatErrmsg, p, buf.Length));
            return Utf8.Decode(buf, n);
        }

        static UIntPtr Read(bool wechatErrmsg, byte* buf, int len)
        {
            return wechatErrmsg
                ? NativeMethods.wx_last_wechat_errmsg(buf, (UIntPtr)len)
                : NativeMethods.wx_last_error_message(buf, (UIntPtr)len);
        }
    }
}
