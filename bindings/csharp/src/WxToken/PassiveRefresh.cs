using System;
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
            if (errCodeOf == null) throw new ArgumentNullException(nameof(errCodeOf));
            return Call(appId, apiCall, errCodeOf, null);
        }

        /// <summary>
        /// <see cref="Call{T}(string, Func{string, T}, Func{T, int})"/> for SDKs that throw when WeChat answers an errcode
        /// (Senparc's <c>ErrorJsonResultException</c>, for example): <paramref name="errCodeOfException"/> finds the
        /// errcode in an exception the call threw. If it is 40001, 42001 or 40014, the token is invalidated and the call
        /// runs once more; any other exception, and any exception from the second call, propagates unchanged.
        /// </summary>
        /// <typeparam name="T">What the API call returns.</typeparam>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token to use.</param>
        /// <param name="errCodeOf">Extracts WeChat's errcode from the call's result (0 for success), or <c>null</c> when results never carry one.</param>
        /// <param name="errCodeOfException">WeChat's errcode carried by an exception the call threw, or 0 when it carries none; <c>null</c> to let every exception propagate.</param>
        /// <returns>The result of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static T Call<T>(string appId, Func<string, T> apiCall, Func<T, int> errCodeOf, Func<Exception, int> errCodeOfException)
        {
            if (apiCall == null) throw new ArgumentNullException(nameof(apiCall));
            string token = Get(appId);
            try
            {
                T result = apiCall(token);
                if (errCodeOf == null || !WxTokenException.IsTokenRejected(errCodeOf(result))) return result;
            }
            catch (Exception e) when (Rejects(errCodeOfException, e))
            {
            }
            Invalidate(appId, token);
            return apiCall(Get(appId));
        }

        /// <summary>
        /// <see cref="Call{T}(string, Func{string, T}, Func{T, int})"/> for calls that return WeChat's JSON response as a
        /// string (as <c>WebClient.DownloadString</c> or <c>HttpClient.GetStringAsync</c> do): the errcode is read from
        /// the JSON's top-level <c>"errcode"</c> field (<see cref="ErrCodeOf"/>).
        /// </summary>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token, returns the response body.</param>
        /// <returns>The response body of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static string Call(string appId, Func<string, string> apiCall)
        {
            return Call(appId, apiCall, ErrCodeOf, null);
        }

        /// <summary>The asynchronous <see cref="Call{T}(string, Func{string, T}, Func{T, int})"/>: same single retry, without blocking a thread on a token fetch.</summary>
        /// <typeparam name="T">What the API call returns.</typeparam>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token to use.</param>
        /// <param name="errCodeOf">Extracts WeChat's errcode from the call's result (0 for success).</param>
        /// <returns>The result of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static Task<T> CallAsync<T>(string appId, Func<string, Task<T>> apiCall, Func<T, int> errCodeOf)
        {
            if (errCodeOf == null) throw new ArgumentNullException(nameof(errCodeOf));
            return CallAsync(appId, apiCall, errCodeOf, null);
        }

        /// <summary>
        /// The asynchronous <see cref="Call{T}(string, Func{string, T}, Func{T, int}, Func{Exception, int})"/>: the
        /// rejection may come as a result or as an exception (thrown, or a faulted task).
        /// </summary>
        /// <typeparam name="T">What the API call returns.</typeparam>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token to use.</param>
        /// <param name="errCodeOf">Extracts WeChat's errcode from the call's result (0 for success), or <c>null</c> when results never carry one.</param>
        /// <param name="errCodeOfException">WeChat's errcode carried by an exception the call threw, or 0 when it carries none; <c>null</c> to let every exception propagate.</param>
        /// <returns>The result of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static async Task<T> CallAsync<T>(string appId, Func<string, Task<T>> apiCall, Func<T, int> errCodeOf, Func<Exception, int> errCodeOfException)
        {
            if (apiCall == null) throw new ArgumentNullException(nameof(apiCall));
            string token = await GetAsync(appId).ConfigureAwait(false);
            try
            {
                T result = await apiCall(token).ConfigureAwait(false);
                if (errCodeOf == null || !WxTokenException.IsTokenRejected(errCodeOf(result))) return result;
            }
            catch (Exception e) when (Rejects(errCodeOfException, e))
            {
            }
            // Invalidate blocks on the replacement fetch: keep it off the caller's thread.
            await Task.Run(() => Invalidate(appId, token)).ConfigureAwait(false);
            string fresh = await GetAsync(appId).ConfigureAwait(false);
            return await apiCall(fresh).ConfigureAwait(false);
        }

        /// <summary><see cref="CallAsync{T}(string, Func{string, Task{T}}, Func{T, int})"/> for calls that return WeChat's JSON response as a string.</summary>
        /// <param name="appId">A registered AppID.</param>
        /// <param name="apiCall">The WeChat API call; receives the access_token, returns the response body.</param>
        /// <returns>The response body of the last call made.</returns>
        /// <exception cref="WxTokenException">No token, or no replacement token, could be had.</exception>
        public static Task<string> CallAsync(string appId, Func<string, Task<string>> apiCall)
        {
            return CallAsync(appId, apiCall, ErrCodeOf, null);
        }

        // In an exception filter, so a rethrow keeps the original stack; an extractor that throws counts as "no".
        static bool Rejects(Func<Exception, int> errCodeOfException, Exception e)
        {
            return errCodeOfException != null && WxTokenException.IsTokenRejected(errCodeOfException(e));
        }

        /// <summary>
        /// WeChat's errcode in a JSON response body: the integer value of the top-level object's <c>"errcode"</c>, or 0
        /// when there is none (successful responses often omit it) or the body is not a JSON object. An
        /// <c>"errcode"</c> nested deeper (inside a list of results, say) is not the answer's own and is ignored.
        /// </summary>
        /// <param name="json">A WeChat API response body.</param>
        /// <returns>The errcode, or 0.</returns>
        public static int ErrCodeOf(string json)
        {
            long? code = Json.TopLevelInteger(json, "errcode");
            return code.HasValue && code.Value >= int.MinValue && code.Value <= int.MaxValue ? (int)code.Value : 0;
        }
    }
}
