namespace WxToken
{
    /// <summary>
    /// Where the native engine (<c>libwx_token.so</c>, <c>wx_token.dll</c>, <c>libwx_token.dylib</c>) comes from.
    /// Search order: <see cref="Path"/>, else the <c>WX_TOKEN_LIB</c> environment variable (either one, when set,
    /// is the only candidate); else next to <c>WxToken.dll</c>, then <c>runtimes/&lt;rid&gt;/native/</c> below it
    /// (the NuGet layout), the same two under the application's base directory, and finally the runtime's default
    /// probing (<c>LD_LIBRARY_PATH</c>, <c>PATH</c>, system directories).
    /// </summary>
    public static class WxTokenLibrary
    {
        /// <summary>The environment variable holding an explicit path to the native library.</summary>
        public const string EnvironmentVariable = "WX_TOKEN_LIB";

        /// <summary>
        /// An explicit absolute path to the native library. Set it before the first call into the binding; later
        /// changes have no effect, because a process loads the library once.
        /// </summary>
        public static string Path { get; set; }

        /// <summary>The file the library was loaded from, or <c>null</c> if the runtime's default probing found it (or nothing is loaded yet).</summary>
        public static string LoadedFrom { get { return NativeLibraryLoader.LoadedFrom; } }

        /// <summary>The runtime identifier used for the <c>runtimes/&lt;rid&gt;/native/</c> lookup, e.g. <c>linux-x64</c>.</summary>
        public static string RuntimeIdentifier { get { return NativeLibraryLoader.Rid; } }

        /// <summary>Loads the native library now, so a missing library fails at startup instead of at the first token request.</summary>
        /// <exception cref="WxTokenLibraryNotFoundException">It could not be found or loaded; the message lists every path tried.</exception>
        public static void Load()
        {
            NativeLibraryLoader.Ensure();
        }
    }
}
