// wx_token.hpp: a header-only C++17 wrapper over the wx_token C ABI (wx_token.h).
//
//   #include <wx_token.hpp>
//
//   wx_token::options o;                 // all fields optional; see wx_token_register
//   o.endpoint = "stable";
//   wx_token::register_app("wx123", secret, o);
//   std::string token = wx_token::get("wx123");          // throws wx_token::error
//
//   // Passive refresh: call WeChat with the current token; if WeChat answers 40001, 42001 or
//   // 40014, the token is invalidated and the call is made once more with the new one.
//   auto reply = wx_token::with_token("wx123", [&](const std::string& t) { return call_api(t); },
//                                     [](const reply_t& r) { return r.errcode; });
//
// Every function forwards to the C library and is as thread-safe as it is. Failures throw
// wx_token::error, carrying the library's status (WX_*), WeChat's errcode (0 if none) and the
// library's message. Strings are UTF-8; a string with an embedded NUL byte is rejected with
// WX_INVALID_ARGUMENT before reaching the library (it would otherwise be silently cut short).

#ifndef WX_TOKEN_HPP
#define WX_TOKEN_HPP

#include <wx_token.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

namespace wx_token {

// The status codes of wx_token.h, for switch statements and comparisons with error::status().
enum class status : std::int32_t {
    ok = WX_OK,
    invalid_argument = WX_INVALID_ARGUMENT,
    buffer_too_small = WX_BUFFER_TOO_SMALL,
    unknown_app = WX_UNKNOWN_APP,
    wechat_error = WX_WECHAT_ERROR,
    network = WX_NETWORK,
    protocol = WX_PROTOCOL,
    store = WX_STORE,
    panic = WX_PANIC,
    rate_limited = WX_RATE_LIMITED,
};

// "OK", "INVALID_ARGUMENT", ... ("UNKNOWN" for a number this library version does not define).
inline const char* status_name(int s) noexcept { return ::wx_status_name(static_cast<std::int32_t>(s)); }

// The library's version, e.g. "0.1.0".
inline std::string version() { return ::wx_token_version(); }

// A failed call. what() reads "<function>: <STATUS_NAME>: <message>".
class error : public std::runtime_error {
public:
    error(int status, int errcode, std::string message, const char* function = "wx_token")
        : std::runtime_error(std::string(function) + ": " + status_name(status) + ": " + message),
          status_(status),
          errcode_(errcode),
          message_(std::move(message)) {}

    // One of the WX_* status codes (compare with wx_token::status or the macros).
    int status() const noexcept { return status_; }
    // WeChat's errcode (e.g. 40125 for a wrong secret, 45009 for the daily quota), 0 if none.
    int errcode() const noexcept { return errcode_; }
    // The library's message alone, without the function and status prefix. Never the secret.
    const std::string& message() const noexcept { return message_; }

    bool is(wx_token::status s) const noexcept { return status_ == static_cast<int>(s); }

private:
    int status_;
    int errcode_;
    std::string message_;
};

// WeChat errcodes that mean "this access_token is no longer good": 40001 (invalid or
// superseded), 42001 (expired), 40014 (not a valid token). with_token reacts to these.
inline bool is_token_errcode(long long errcode) noexcept {
    return errcode == 40001 || errcode == 42001 || errcode == 40014;
}

// Options of wx_token_register; an unset field keeps the library's default.
struct options {
    std::string api_base;  // "" = "https://api.weixin.qq.com"; http:// only for loopback hosts
    std::string endpoint;  // "" = "stable" (WeChat's recommendation), or "classic"
    std::optional<std::uint64_t> refresh_ahead_secs;  // default 300
    std::optional<std::uint64_t> timeout_ms;          // default 5000
    std::optional<std::uint64_t> retry_min_ms;        // default 500
    std::optional<std::uint64_t> retry_max_ms;        // default 60000
    std::optional<std::uint64_t> error_cooldown_ms;   // default 30000

    // The options_json the library receives, e.g. {"endpoint":"classic","timeout_ms":2000}.
    std::string to_json() const {
        std::string out = "{";
        auto key = [&out](const char* name) {
            if (out.size() > 1) out += ',';
            out += '"';
            out += name;
            out += "\":";
        };
        auto str = [&](const char* name, const std::string& v) {
            if (v.empty()) return;
            key(name);
            append_json_string(out, v);
        };
        auto num = [&](const char* name, const std::optional<std::uint64_t>& v) {
            if (!v) return;
            key(name);
            out += std::to_string(*v);
        };
        str("api_base", api_base);
        str("endpoint", endpoint);
        num("refresh_ahead_secs", refresh_ahead_secs);
        num("timeout_ms", timeout_ms);
        num("retry_min_ms", retry_min_ms);
        num("retry_max_ms", retry_max_ms);
        num("error_cooldown_ms", error_cooldown_ms);
        out += '}';
        return out;
    }

    // Appends `s` as a JSON string literal: quotes, backslashes and control characters are
    // escaped; other bytes (UTF-8) pass through unchanged.
    static void append_json_string(std::string& out, std::string_view s) {
        static const char hex[] = "0123456789abcdef";
        out += '"';
        for (char c : s) {
            const auto u = static_cast<unsigned char>(c);
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\b': out += "\\b"; break;
                case '\f': out += "\\f"; break;
                case '\n': out += "\\n"; break;
                case '\r': out += "\\r"; break;
                case '\t': out += "\\t"; break;
                default:
                    if (u < 0x20) {
                        out += "\\u00";
                        out += hex[u >> 4];
                        out += hex[u & 0xf];
                    } else {
                        out += c;
                    }
            }
        }
        out += '"';
    }
};

// A token with what wx_token_get_ex reports about it.
struct token_info {
    std::string token;
    std::uint64_t generation = 0;            // changes whenever the handed-out token changes
    std::chrono::milliseconds expires_in{0};  // remaining lifetime when it was returned
};

namespace detail {

// Builds the error for a failed call from this thread's last-error slots. Must run right after
// the failing call, on the same thread (the library keeps them per thread, until its next call).
inline error last_error(std::int32_t st, const char* function) {
    const int errcode = static_cast<int>(::wx_last_errcode());
    std::string msg;
    char small[256];
    std::size_t len = ::wx_last_error_message(small, sizeof small);
    if (len < sizeof small) {
        msg.assign(small, len);
    } else {
        msg.resize(len + 1);
        len = ::wx_last_error_message(&msg[0], msg.size());
        msg.resize(len < msg.size() ? len : msg.size() - 1);
    }
    return error(static_cast<int>(st), errcode, std::move(msg), function);
}

inline void check(std::int32_t st, const char* function) {
    if (st != WX_OK) throw last_error(st, function);
}

// A std::string can hold NUL bytes; the C ABI would silently stop at the first one.
inline const char* c_str(const std::string& s, const char* what, const char* function) {
    if (s.find('\0') != std::string::npos) {
        throw error(WX_INVALID_ARGUMENT, 0, std::string(what) + " contains a NUL byte", function);
    }
    return s.c_str();
}

template <class T, class = void>
struct has_errcode_member : std::false_type {};
template <class T>
struct has_errcode_member<T, std::void_t<decltype(std::declval<const T&>().errcode)>> : std::true_type {};

template <class T>
struct is_pair : std::false_type {};
template <class A, class B>
struct is_pair<std::pair<A, B>> : std::true_type {};

template <class T>
struct is_tuple : std::false_type {};
template <class... A>
struct is_tuple<std::tuple<A...>> : std::true_type {};

template <class T>
inline constexpr bool dependent_false = false;

}  // namespace detail

// The WeChat errcode with_token finds in a call's result when no extractor is given:
//  - an integral result is the errcode itself;
//  - a std::pair<T, E> or std::tuple<..., E> carries it in its last element;
//  - a class with an `errcode` data member carries it there (0 / absent = success).
// For anything else, pass an extractor to with_token.
template <class R>
long long errcode_of(const R& r) {
    using T = std::decay_t<R>;
    if constexpr (std::is_integral_v<T>) {
        return static_cast<long long>(r);
    } else if constexpr (detail::is_pair<T>::value) {
        return static_cast<long long>(r.second);
    } else if constexpr (detail::is_tuple<T>::value) {
        return static_cast<long long>(std::get<std::tuple_size_v<T> - 1>(r));
    } else if constexpr (detail::has_errcode_member<T>::value) {
        return static_cast<long long>(r.errcode);
    } else {
        static_assert(detail::dependent_false<T>,
                      "wx_token::with_token: cannot find a WeChat errcode in this result type; "
                      "return an int, a std::pair<T, int>, or a struct with an `errcode` member, "
                      "or pass an extractor as the third argument");
        return 0;
    }
}

// Registers an app, or updates its secret and options (wx_token_register). Nothing is fetched
// here. Throws error (status INVALID_ARGUMENT) for a bad appid, secret or option.
inline void register_app(const std::string& appid, const std::string& secret, const options& opts = {}) {
    constexpr const char* fn = "wx_token_register";
    const std::string json = opts.to_json();
    detail::check(::wx_token_register(detail::c_str(appid, "appid", fn), detail::c_str(secret, "secret", fn),
                                      detail::c_str(json, "options", fn)),
                  fn);
}

// A valid access_token for `appid` (wx_token_get_ex): cached without I/O, or fetched once for
// all threads waiting. Throws error: UNKNOWN_APP, WECHAT_ERROR (errcode() says which),
// NETWORK, PROTOCOL, INVALID_ARGUMENT.
inline token_info get_info(const std::string& appid) {
    constexpr const char* fn = "wx_token_get";
    const char* id = detail::c_str(appid, "appid", fn);
    char buf[WX_TOKEN_MAX_LEN + 1];  // always enough, per the header
    std::size_t len = 0;
    std::uint64_t generation = 0, expires_in_ms = 0;
    std::int32_t st = ::wx_token_get_ex(id, buf, sizeof buf, &len, &generation, &expires_in_ms);
    if (st == WX_OK) {
        return token_info{std::string(buf, len), generation, std::chrono::milliseconds(expires_in_ms)};
    }
    // Defensive: a future library with longer tokens says how long; the token may change
    // between calls, so retry a few times with the size it reports.
    for (int attempt = 0; st == WX_BUFFER_TOO_SMALL && attempt < 3; ++attempt) {
        std::string big(len + 1, '\0');
        st = ::wx_token_get_ex(id, &big[0], big.size(), &len, &generation, &expires_in_ms);
        if (st == WX_OK) {
            big.resize(len);
            return token_info{std::move(big), generation, std::chrono::milliseconds(expires_in_ms)};
        }
    }
    throw detail::last_error(st, fn);
}

// A valid access_token for `appid`; see get_info.
inline std::string get(const std::string& appid) { return get_info(appid).token; }

// The passive refresh (wx_token_invalidate): `stale_token` was rejected by WeChat with 40001,
// 42001 or 40014. If it is still the cached token, a replacement is fetched before this
// returns; otherwise nothing happens. Throws error, e.g. RATE_LIMITED when the stable
// endpoint would need a force_refresh beyond WeChat's limits (the token stays in service).
inline void invalidate(const std::string& appid, const std::string& stale_token) {
    constexpr const char* fn = "wx_token_invalidate";
    detail::check(::wx_token_invalidate(detail::c_str(appid, "appid", fn), detail::c_str(stale_token, "stale_token", fn)),
                  fn);
}

// Forces a new token (wx_token_invalidate with NULL), within WeChat's limits: one per 30 s and
// 20 per day per app, else error with status RATE_LIMITED.
inline void force_refresh(const std::string& appid) {
    constexpr const char* fn = "wx_token_invalidate";
    detail::check(::wx_token_invalidate(detail::c_str(appid, "appid", fn), nullptr), fn);
}

// Stops the background refresh thread (wx_token_shutdown); later calls resume it.
inline void shutdown() noexcept { (void)::wx_token_shutdown(); }

// Calls `call(token)` with the current token for `appid` and returns its result. If the result
// carries errcode 40001, 42001 or 40014 (found by `errcode(result)`), that token is
// invalidated and `call` is made once more with the new token; the second result is returned
// whatever it is (never more than two calls). Errors of the library (getting the token, or
// invalidating it, e.g. RATE_LIMITED) are thrown as wx_token::error; exceptions from `call`
// propagate unchanged.
template <class F, class E>
auto with_token(const std::string& appid, F&& call, E&& errcode) -> std::decay_t<std::invoke_result_t<F&, const std::string&>> {
    using R = std::decay_t<std::invoke_result_t<F&, const std::string&>>;
    static_assert(!std::is_void_v<R>, "wx_token::with_token: the call must return its result (or errcode)");
    std::string token = get(appid);
    R first = call(static_cast<const std::string&>(token));
    if (!is_token_errcode(static_cast<long long>(errcode(static_cast<const R&>(first))))) return first;
    invalidate(appid, token);
    token = get(appid);
    return call(static_cast<const std::string&>(token));
}

// with_token, finding the errcode with wx_token::errcode_of (an int result, a pair or tuple
// whose last element is the errcode, or a struct with an `errcode` member).
template <class F>
auto with_token(const std::string& appid, F&& call) {
    using R = std::decay_t<std::invoke_result_t<F&, const std::string&>>;
    return with_token(appid, std::forward<F>(call), [](const R& r) { return errcode_of(r); });
}

}  // namespace wx_token

#endif  // WX_TOKEN_HPP
