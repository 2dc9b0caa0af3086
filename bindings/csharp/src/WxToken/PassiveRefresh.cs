using System;
using System.Globalization;
using System.Threading.Tasks;

namespace WxToken
{
    public static partial class WxAccessToken
    {
        /// <summary>
        /// Runs a WeChat API call with the current token; if its result carries errcode 40001, 42001 or 40014 (token
        /// invalid or expired), invalidates that token and runs the call once more with the replacement. Never more
        /// than two calls: a second rejection is returned as is.
        /// </summary>
        /// <typeparam name="T">What the API call returns.</typeparam>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token to use.</param>
        /// <param name="errCodeOf">Extracts WeChat's errcode from the call's result (0 for success).</param>
        /// <returns>The result of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static T Call<T>(string appId, Func<string, T> apiCall, Func<T, int> errCodeOf)
        {
            if (apiCall == null) throw new ArgumentNullException(nameof(apiCall));
            if (errCodeOf == null) throw new ArgumentNullException(nameof(errCodeOf));
            string token = Get(appId);
            T result = apiCall(token);
            if (!WxTokenException.IsTokenRejected(errCodeOf(result))) return result;
            Invalidate(appId, token);
            return apiCall(Get(appId));
        }

        /// <summary>
        /// <see cref="Call{T}"/> for calls that return WeChat's JSON response as a string (as <c>WebClient.DownloadString</c>
        /// or <c>HttpClient.GetStringAsync</c> do): the errcode is read from the JSON's top-level <c>"errcode"</c> field.
        /// </summary>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token, returns the response body.</param>
        /// <returns>The response body of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static string Call(string appId, Func<string, string> apiCall)
        {
            return Call(appId, apiCall, ErrCodeOf);
        }

        /// <summary>The asynchronous <see cref="Call{T}"/>: same single retry, without blocking a thread on a token fetch.</summary>
        /// <typeparam name="T">What the API call returns.</typeparam>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token to use.</param>
        /// <param name="errCodeOf">Extracts WeChat's errcode from the call's result (0 for success).</param>
        /// <returns>The result of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static async Task<T> CallAsync<T>(string appId, Func<string, Task<T>> apiCall, Func<T, int> errCodeOf)
        {
            if (apiCall == null) throw new ArgumentNullException(nameof(apiCall));
            if (errCodeOf == null) throw new ArgumentNullException(nameof(errCodeOf));
            string token = await GetAsync(appId).ConfigureAwait(false);
            T result = await apiCall(token).ConfigureAwait(false);
            if (!WxTokenException.IsTokenRejected(errCodeOf(result))) return result;
            // Invalidate blocks on the replacement fetch: keep it off the caller's thread.
            await Task.Run(() => Invalidate(appId, token)).ConfigureAwait(false);
            string fresh = await GetAsync(appId).ConfigureAwait(false);
            return await apiCall(fresh).ConfigureAwait(false);
        }

        /// <summary><see cref="CallAsync{T}"/> for calls that return WeChat's JSON response as a string.</summary>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token, returns the response body.</param>
        /// <returns>The response body of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static Task<string> CallAsync(string appId, Func<string, Task<string>> apiCall)
        {
            return CallAsync(appId, apiCall, ErrCodeOf);
        }

        /// <summary>
        /// WeChat's errcode in a JSON response body: the value of the first <c>"errcode"</c> key, or 0 when there is none
        /// (successful responses often omit it).
        /// </summary>
        /// <param name="json">A WeChat API response body.</param>
        /// <returns>The errcode, or 0.</returns>
        public static int ErrCodeOf(string json)
        {
            if (json == null) return 0;
            int i = json.IndexOf("\"errcode\"", StringComparison.Ordinal);
            if (i < 0) return 0;
            i += 9;
            while (i < json.Length && (char.IsWhiteSpace(json[i]) || json[i] == ':')) i++;
            int start = i;
            if (i < json.Length && json[i] == '-') i++;
            while (i < json.Length && json[i] >= '0' && json[i] <= '9') i++;
            int code;
            return int.TryParse(json.Substring(start, i - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out code) ? code : 0;
        }
    }
}
