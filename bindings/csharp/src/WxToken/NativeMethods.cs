using System;
using System.Runtime.InteropServices;

namespace WxToken
{
    // The raw C ABI of include/wx_token.h, nothing else. Strings go in as NUL-terminated UTF-8 byte[]
    // (pinned, not copied, by the marshaller) so no ANSI code page is ever involved; outputs use
    // caller buffers. size_t is UIntPtr. Call these only through NativeCalls, after NativeLibraryLoader.Ensure().
    internal static unsafe class NativeMethods
    {
        internal const string Lib = "wx_token";

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_token_register(byte[] appid, byte[] secret, byte[] optionsJson);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_token_get(byte[] appid, byte* buf, UIntPtr bufLen, out UIntPtr outLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_token_get_ex(byte[] appid, byte* buf, UIntPtr bufLen, out UIntPtr outLen,
            out ulong outGeneration, out ulong outExpiresInMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_token_invalidate(byte[] appid, byte[] staleToken);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_token_generation_counter(byte[] appid, out IntPtr outCounter);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_token_shutdown();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_last_errcode();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern UIntPtr wx_last_error_message(byte* buf, UIntPtr bufLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern UIntPtr wx_last_wechat_errmsg(byte* buf, UIntPtr bufLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr wx_token_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr wx_status_name(int status);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_token_stats_json(byte[] appid, byte* buf, UIntPtr bufLen, out UIntPtr outLen);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr wx_token_options_schema();

        // The delegate is marshalled to a function pointer that stays valid only while the delegate lives: callers pass
        // a delegate held in a static field (WxEvents), never a temporary.
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_set_event_callback(EventFn fn, IntPtr userData, int minLevel);

        // typedef void (*wx_event_fn)(void *user_data, const wx_event *event);
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void EventFn(IntPtr userData, NativeEvent* ev);

        // struct wx_event: the C layout (int32, padding, three pointers, two int32), which Sequential reproduces.
        [StructLayout(LayoutKind.Sequential)]
        internal struct NativeEvent
        {
            internal int Level;
            internal IntPtr App;
            internal IntPtr Kind;
            internal IntPtr Message;
            internal int Status;
            internal int ErrCode;
        }
    }
}
