using System;
using System.Runtime.CompilerServices;

namespace WxToken
{
    // The checked layer of the JS-SDK functions: one engine call each, a failing status turned into a
    // WxTokenException by NativeCalls.Failure right after the call, on the same thread. [NoInlining] for Mono's
    // P/Invoke binding (see NativeLibraryLoader).
    internal static unsafe class TicketCalls
    {
        // The header's bounds: a ticket fits WX_TOKEN_MAX_LEN + 1, a config WX_JSSDK_CONFIG_MAX_LEN + 1, a signature
        // WX_SIGNATURE_LEN + 1. A longer answer (a future engine) is still read: the loops grow to the reported length.
        const int TicketBuffer = 512 + 1;
        const int ConfigBuffer = 512 + 1;
        const int SignatureLength = 40;

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string TicketGet(string appId, byte[] appIdZ, byte[] kindZ)
        {
            var buf = new byte[TicketBuffer];
            while (true)
            {
                UIntPtr len;
                int st;
                fixed (byte* p = buf)
                    st = TicketNativeMethods.wx_ticket_get(appIdZ, kindZ, p, (UIntPtr)buf.Length, out len);
                if (st == 0) return Utf8.Decode(buf, (int)len);
                if (st != (int)WxStatus.BufferTooSmall) throw NativeCalls.Failure(st, appId, "ticket");
                buf = new byte[(int)len + 1];
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static void TicketInvalidate(string appId, byte[] appIdZ, byte[] kindZ, byte[] staleZ)
        {
            int st = TicketNativeMethods.wx_ticket_invalidate(appIdZ, kindZ, staleZ);
            if (st != 0) throw NativeCalls.Failure(st, appId, "invalidate ticket");
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string JsSdkConfig(string appId, byte[] appIdZ, byte[] kindZ, byte[] urlZ)
        {
            var buf = new byte[ConfigBuffer];
            while (true)
            {
                UIntPtr len;
                int st;
                fixed (byte* p = buf)
                    st = TicketNativeMethods.wx_jssdk_config(appIdZ, kindZ, urlZ, p, (UIntPtr)buf.Length, out len);
                if (st == 0) return Utf8.Decode(buf, (int)len);
                if (st != (int)WxStatus.BufferTooSmall) throw NativeCalls.Failure(st, appId, "jssdk config");
                buf = new byte[(int)len + 1];
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string JsSdkSignature(byte[] ticketZ, byte[] nonceZ, byte[] timestampZ, byte[] urlZ)
        {
            var buf = new byte[SignatureLength + 1];
            int st;
            fixed (byte* p = buf)
                st = TicketNativeMethods.wx_jssdk_signature(ticketZ, nonceZ, timestampZ, urlZ, p, (UIntPtr)buf.Length);
            if (st != 0) throw NativeCalls.Failure(st, null, "jssdk signature");
            return Utf8.Decode(buf, SignatureLength);
        }

        // The values travel as one NUL-separated buffer and an array of pointers into it, both pinned for the call.
        [MethodImpl(MethodImplOptions.NoInlining)]
        internal static string CardSignature(byte[][] valuesZ)
        {
            int total = 0;
            foreach (byte[] v in valuesZ) total += v.Length;
            var all = new byte[Math.Max(total, 1)];
            var pointers = new IntPtr[Math.Max(valuesZ.Length, 1)];
            var buf = new byte[SignatureLength + 1];
            int st;
            fixed (byte* a = all)
            fixed (IntPtr* ptrs = pointers)
            fixed (byte* p = buf)
            {
                int at = 0;
                for (int i = 0; i < valuesZ.Length; i++)
                {
                    Buffer.BlockCopy(valuesZ[i], 0, all, at, valuesZ[i].Length);
                    ptrs[i] = (IntPtr)(a + at);
                    at += valuesZ[i].Length;
                }
                st = TicketNativeMethods.wx_card_signature(ptrs, (UIntPtr)valuesZ.Length, p, (UIntPtr)buf.Length);
            }
            if (st != 0) throw NativeCalls.Failure(st, null, "card signature");
            return Utf8.Decode(buf, SignatureLength);
        }
    }
}
