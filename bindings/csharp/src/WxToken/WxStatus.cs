namespace WxToken
{
    /// <summary>
    /// The engine's status codes (<c>WX_*</c> in <c>wx_token.h</c>). The numbers are the engine's own and never
    /// reused, so they can be logged and compared across languages.
    /// </summary>
    public enum WxStatus
    {
        /// <summary>The native library could not be loaded. Binding-side only: the engine never returns it.</summary>
        NativeLibraryNotFound = -1,
        /// <summary>Success (<c>WX_OK</c>).</summary>
        Ok = 0,
        /// <summary>An invalid argument or bad options (<c>WX_INVALID_ARGUMENT</c>).</summary>
        InvalidArgument = 1,
        /// <summary>An output buffer was too small (<c>WX_BUFFER_TOO_SMALL</c>); the binding resizes and retries, so users do not see it.</summary>
        BufferTooSmall = 2,
        /// <summary>The appid was never registered in this process (<c>WX_UNKNOWN_APP</c>).</summary>
        UnknownApp = 3,
        /// <summary>WeChat answered a nonzero errcode (<c>WX_WECHAT_ERROR</c>); see <see cref="WxTokenException.ErrCode"/>.</summary>
        WeChatError = 4,
        /// <summary>Connect, TLS, timeout, redirect or non-2xx HTTP status (<c>WX_NETWORK</c>).</summary>
        Network = 5,
        /// <summary>WeChat's response was not understood, or the token was over 512 bytes (<c>WX_PROTOCOL</c>).</summary>
        Protocol = 6,
        /// <summary>A shared token store failed (<c>WX_STORE</c>).</summary>
        Store = 7,
        /// <summary>An internal engine bug was caught at the boundary (<c>WX_PANIC</c>).</summary>
        Panic = 8,
        /// <summary>Refused locally to stay within WeChat's limits: forced refresh at most once per 30 s and 20 a day (<c>WX_RATE_LIMITED</c>).</summary>
        RateLimited = 9,
    }
}
