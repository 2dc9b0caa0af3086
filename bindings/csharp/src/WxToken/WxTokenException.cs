using System;
using System.Collections.Generic;

namespace WxToken
{
    /// <summary>
    /// The one exception type the binding throws for engine failures: the engine's <see cref="Status"/>, WeChat's
    /// <see cref="ErrCode"/>/<see cref="ErrMsg"/> when WeChat answered one, and the engine's message.
    /// Argument mistakes caught before the engine is called are reported with the usual <see cref="ArgumentException"/>s.
    /// </summary>
    public class WxTokenException : Exception
    {
        /// <summary>What failed, as the engine reported it.</summary>
        public WxStatus Status { get; }

        /// <summary>WeChat's errcode (for example 40125 for a wrong AppSecret, 45009 for the daily quota), or 0 when WeChat did not answer one.</summary>
        public int ErrCode { get; }

        /// <summary>WeChat's errmsg when <see cref="ErrCode"/> is nonzero, else <c>null</c>.</summary>
        public string ErrMsg { get; }

        /// <summary>The appid of the call that failed, when there was one.</summary>
        public string AppId { get; }

        /// <summary>Creates an exception; the binding does this, users normally only catch it.</summary>
        /// <param name="status">The engine status.</param>
        /// <param name="errCode">WeChat's errcode, or 0.</param>
        /// <param name="errMsg">WeChat's errmsg, or <c>null</c>.</param>
        /// <param name="appId">The appid concerned, or <c>null</c>.</param>
        /// <param name="message">The full, human-readable message.</param>
        /// <param name="inner">The underlying exception, if any.</param>
        public WxTokenException(WxStatus status, int errCode, string errMsg, string appId, string message, Exception inner = null)
            : base(message, inner)
        {
            Status = status;
            ErrCode = errCode;
            ErrMsg = errMsg;
            AppId = appId;
        }

        /// <summary>True for the errcodes that mean "this access_token is no longer valid" (40001, 42001, 40014).</summary>
        /// <param name="errCode">An errcode from a WeChat API response.</param>
        public static bool IsTokenRejected(int errCode)
        {
            return errCode == 40001 || errCode == 42001 || errCode == 40014;
        }
    }

    /// <summary>
    /// The native library <c>wx_token</c> could not be found or loaded. <see cref="SearchedPaths"/> (also in the
    /// message) lists every place that was tried, in order.
    /// </summary>
    public sealed class WxTokenLibraryNotFoundException : WxTokenException
    {
        /// <summary>The candidate files tried, in order, before the runtime's default probing.</summary>
        public IReadOnlyList<string> SearchedPaths { get; }

        internal WxTokenLibraryNotFoundException(IReadOnlyList<string> searched, string message, Exception inner)
            : base(WxStatus.NativeLibraryNotFound, 0, null, null, message, inner)
        {
            SearchedPaths = searched;
        }
    }
}
