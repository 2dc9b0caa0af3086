using System;
using System.Runtime.InteropServices;
using System.Text;

namespace WxToken
{
    // UTF-8 in both directions, never the platform's ANSI code page.
    internal static class Utf8
    {
        static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        // NUL-terminated UTF-8 for the engine. An embedded NUL would silently truncate the string on the C side.
        internal static byte[] Z(string s, string paramName)
        {
            if (s == null) throw new ArgumentNullException(paramName);
            if (s.IndexOf('\0') >= 0) throw new ArgumentException("must not contain a NUL character", paramName);
            byte[] b;
            try { b = new byte[Strict.GetByteCount(s) + 1]; Strict.GetBytes(s, 0, s.Length, b, 0); }
            catch (EncoderFallbackException e) { throw new ArgumentException("is not valid UTF-16 (lone surrogate)", paramName, e); }
            return b;
        }

        internal static string Decode(byte[] buf, int len)
        {
            return Encoding.UTF8.GetString(buf, 0, len);
        }

        // A NUL-terminated UTF-8 string owned by the engine (version, status names, event fields), copied.
        internal static string FromCString(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            var b = new byte[n];
            Marshal.Copy(p, b, 0, n);
            return Decode(b, n);
        }
    }
}
