using System;
using System.Runtime.InteropServices;

namespace WxToken
{
    // The raw C ABI of the JS-SDK functions of include/wx_token.h (wx_ticket_*, wx_jssdk_*, wx_card_signature), kept
    // apart from NativeMethods but bound to the same library name, so the loader's preload and resolver serve both.
    // Call these only through TicketCalls, after NativeLibraryLoader.Ensure().
    internal static unsafe class TicketNativeMethods
    {
        [DllImport(NativeMethods.Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_ticket_get(byte[] appid, byte[] kind, byte* buf, UIntPtr bufLen, out UIntPtr outLen);

        [DllImport(NativeMethods.Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_ticket_invalidate(byte[] appid, byte[] kind, byte[] staleTicket);

        [DllImport(NativeMethods.Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_jssdk_config(byte[] appid, byte[] kind, byte[] url, byte* buf, UIntPtr bufLen, out UIntPtr outLen);

        [DllImport(NativeMethods.Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_jssdk_signature(byte[] ticket, byte[] noncestr, byte[] timestamp, byte[] url, byte* outHex, UIntPtr outLen);

        [DllImport(NativeMethods.Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int wx_card_signature(IntPtr* values, UIntPtr count, byte* outHex, UIntPtr outLen);
    }
}
