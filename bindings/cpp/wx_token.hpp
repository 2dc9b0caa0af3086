// wx_token.hpp: a header-only C++17 wrapper over the wx_token C ABI (wx_token.h).
//
//   #include <wx_token.hpp>
//
//   wx_token::options o;                 // one member per engine option; unset = default
//   o.store = "redis://10.0.0.5:6379/0"; // share one token across processes and hosts
//   wx_token::register_app("wx123", secret, o);
//   std::string token = wx_token::get("wx123");          // throws wx_token::error
//
//   // Client mode: a wx-tokend server holds the secret; this process holds only a key.
//   o = {}; o.central = "https://tokens.internal:8443"; o.central_key = key;
//   wx_token::register_app("wx123", o);
//
//   // Operator events (a refresh failing with 40164, a token expiring, ...).
//   wx_token::set_event_handler([](const wx_token::event& e) { log(e.kind, e.message); });
//
//   // Passive refresh: call WeChat with the current token; if WeChat answers 40001, 42001 or
//   // 40014 (in the result, or in an exception), the token is invalidated and the call is
//   // made once more with the new one.
//   auto reply = wx_token::with_token("wx123", [&](const std::string& t) { return call_api(t); });
//
// Every function forwards to the C library and is as thread-safe as it is. Failures throw
// wx_token::error, carrying the library's status (WX_*), WeChat's errcode (0 if none) and the
// library's message. Strings are UTF-8; a string with an embedded NUL byte is rejected with
// WX_INVALID_ARGUMENT before reaching the library (it would otherwise be silently cut short).

#ifndef WX_TOKEN_HPP
#define WX_TOKEN_HPP

#include <wx_token.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

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

// Options of wx_token_register: one member per key of options_json, named after the key
// (wx_token_options_schema() lists them; the tests fail when a key has no member here). An
// empty string or an empty optional keeps the library's default.
struct options {
    std::string api_base;  // "" = "https://api.weixin.qq.com"; http:// only for loopback hosts
    std::string endpoint;  // "" = "stable" (WeChat's recommendation), or "classic"
    std::string platform;  // "" = "mp"; "wecom": the id is a label of one WeCom corp secret
    std::string corpid;    // WeCom: the corp's id (required with platform "wecom")
    std::optional<std::uint64_t> agentid;  // WeCom: the app's agentid (agent_config tickets)
    std::optional<std::uint64_t> refresh_ahead_secs;  // default 300
    std::optional<std::uint64_t> timeout_ms;          // default 5000
    std::optional<std::uint64_t> retry_min_ms;        // default 500
    std::optional<std::uint64_t> retry_max_ms;        // default 60000
    std::optional<std::uint64_t> error_cooldown_ms;   // default 30000
    // Sharing one token between processes and hosts:
    std::string store;         // "" = "memory"; "file:/abs/dir"; "redis://[user:pass@]host:port/db"; "rediss://..."
    std::string store_prefix;  // "" = "wx_token:" (needs store)
    std::optional<std::uint64_t> lease_ms;                 // default 10000, or 2 * timeout_ms if larger
    std::optional<std::uint64_t> store_sync_ms;            // default 10000
    std::optional<std::uint64_t> store_fallback_per_hour;  // default 2
    std::string store_tls_ca_file;    // TLS Redis: absolute path of a PEM CA bundle ("" = public roots)
    std::string store_tls_cert_file;  // TLS Redis: absolute path of a PEM client certificate
    std::string store_tls_key_file;   // TLS Redis: absolute path of its PEM private key
    // Pacing of the passive refresh (invalidate of the current token; beyond: RATE_LIMITED):
    std::optional<std::uint64_t> passive_refresh_interval_secs;  // default 30; 0 = no spacing
    std::optional<std::uint64_t> passive_refresh_daily_limit;    // default 100 per rolling 24 h
    // Client mode (register_app without a secret): tokens come from a wx-tokend server.
    std::string central;      // its base URL(s), comma-separated, failed over in order: https, or http on loopback
    std::string central_key;  // this client's key for it (a secret: never logged)
    // Process-wide background refreshing (see the header):
    std::optional<std::uint64_t> refresh_workers;       // default 8: the pool is the largest value given
    std::optional<std::uint64_t> refresh_rate_per_sec;  // default 50 per upstream: the lowest value given applies

    // Calls f(key, member) for every option, in the schema's order: the one list of members,
    // used by to_json() and by the tests that compare it with wx_token_options_schema().
    template <class F>
    void for_each_field(F&& f) const {
        f("api_base", api_base);
        f("endpoint", endpoint);
        f("platform", platform);
        f("corpid", corpid);
        f("agentid", agentid);
        f("refresh_ahead_secs", refresh_ahead_secs);
        f("timeout_ms", timeout_ms);
        f("retry_min_ms", retry_min_ms);
        f("retry_max_ms", retry_max_ms);
        f("error_cooldown_ms", error_cooldown_ms);
        f("store", store);
        f("store_prefix", store_prefix);
        f("lease_ms", lease_ms);
        f("store_sync_ms", store_sync_ms);
        f("store_fallback_per_hour", store_fallback_per_hour);
        f("store_tls_ca_file", store_tls_ca_file);
        f("store_tls_cert_file", store_tls_cert_file);
        f("store_tls_key_file", store_tls_key_file);
        f("passive_refresh_interval_secs", passive_refresh_interval_secs);
        f("passive_refresh_daily_limit", passive_refresh_daily_limit);
        f("central", central);
        f("central_key", central_key);
        f("refresh_workers", refresh_workers);
        f("refresh_rate_per_sec", refresh_rate_per_sec);
    }

    // The options_json the library receives, e.g. {"endpoint":"classic","timeout_ms":2000}.
    std::string to_json() const {
        std::string out = "{";
        for_each_field([&out](const char* name, const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                if (v.empty()) return;
            } else {
                if (!v) return;
            }
            if (out.size() > 1) out += ',';
            out += '"';
            out += name;
            out += "\":";
            if constexpr (std::is_same_v<T, std::string>) {
                append_json_string(out, v);
            } else {
                out += std::to_string(*v);
            }
        });
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

// Calls a `(..., buf, buf_len, out_len)` export through `call(buf, size, &len)`, growing the
// buffer to the length it reports on WX_BUFFER_TOO_SMALL (the value may change in between).
template <class Call>
std::string read_sized(std::size_t first_size, const char* function, Call&& call) {
    std::string buf(first_size, '\0');
    std::size_t len = 0;
    std::int32_t st = call(&buf[0], buf.size(), &len);
    for (int attempt = 0; st == WX_BUFFER_TOO_SMALL && attempt < 3; ++attempt) {
        buf.assign(len + 1, '\0');
        st = call(&buf[0], buf.size(), &len);
    }
    check(st, function);
    buf.resize(len);
    return buf;
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

namespace detail {

// A parsed JSON value: just enough JSON for the library's own answers (stats, schema) and for
// finding a WeChat errcode in an API answer. Objects keep their members in order.
struct json {
    enum class type { null, boolean, number, string, array, object };
    type kind = type::null;
    bool boolean = false;
    double number = 0;
    bool integral = false;   // the number was written without fraction or exponent
    long long integer = 0;   // its value, when integral and in range
    std::string string;
    std::vector<json> items;         // array elements, or object values
    std::vector<std::string> keys;   // object keys, parallel to items

    // The member `key` of an object, or nullptr.
    const json* find(std::string_view key) const {
        if (kind != type::object) return nullptr;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            if (keys[i] == key) return &items[i];
        }
        return nullptr;
    }
};

class json_parser {
public:
    explicit json_parser(std::string_view text) : s_(text) {}

    // The whole text as one value, or nothing if it is not exactly one JSON value.
    std::optional<json> parse() {
        json v;
        if (!value(v, 0)) return std::nullopt;
        ws();
        if (pos_ != s_.size()) return std::nullopt;
        return v;
    }

private:
    std::string_view s_;
    std::size_t pos_ = 0;

    void ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    bool eat(char c) {
        ws();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) return false;
        pos_ += word.size();
        return true;
    }
    bool value(json& v, int depth) {
        if (depth > 64) return false;  // deeper than any answer we read: refuse, do not recurse on
        ws();
        if (pos_ >= s_.size()) return false;
        const char c = s_[pos_];
        if (c == '{') return object(v, depth);
        if (c == '[') return array(v, depth);
        if (c == '"') {
            v.kind = json::type::string;
            return string(v.string);
        }
        if (literal("null")) return true;
        if (literal("true") || literal("false")) {
            v.kind = json::type::boolean;
            v.boolean = s_[pos_ - 1] == 'e' && s_[pos_ - 2] == 'u';
            return true;
        }
        return number(v);
    }
    bool object(json& v, int depth) {
        v.kind = json::type::object;
        ++pos_;
        if (eat('}')) return true;
        do {
            ws();
            std::string key;
            if (pos_ >= s_.size() || s_[pos_] != '"' || !string(key) || !eat(':')) return false;
            json member;
            if (!value(member, depth + 1)) return false;
            v.keys.push_back(std::move(key));
            v.items.push_back(std::move(member));
        } while (eat(','));
        return eat('}');
    }
    bool array(json& v, int depth) {
        v.kind = json::type::array;
        ++pos_;
        if (eat(']')) return true;
        do {
            json item;
            if (!value(item, depth + 1)) return false;
            v.items.push_back(std::move(item));
        } while (eat(','));
        return eat(']');
    }
    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    static void utf8(std::string& out, unsigned long cp) {
        auto byte = [&out](unsigned long b) { out += static_cast<char>(static_cast<unsigned char>(b)); };
        if (cp < 0x80) {
            byte(cp);
        } else if (cp < 0x800) {
            byte(0xC0 | (cp >> 6));
            byte(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            byte(0xE0 | (cp >> 12));
            byte(0x80 | ((cp >> 6) & 0x3F));
            byte(0x80 | (cp & 0x3F));
        } else {
            byte(0xF0 | (cp >> 18));
            byte(0x80 | ((cp >> 12) & 0x3F));
            byte(0x80 | ((cp >> 6) & 0x3F));
            byte(0x80 | (cp & 0x3F));
        }
    }
    bool hex4(unsigned long& cp) {
        if (pos_ + 4 > s_.size()) return false;
        cp = 0;
        for (int i = 0; i < 4; ++i) {
            const int h = hex(s_[pos_++]);
            if (h < 0) return false;
            cp = cp * 16 + static_cast<unsigned long>(h);
        }
        return true;
    }
    bool string(std::string& out) {
        ++pos_;  // the opening quote
        while (pos_ < s_.size()) {
            const char c = s_[pos_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return false;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) return false;
            const char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned long cp = 0;
                    if (!hex4(cp)) return false;
                    if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
                        unsigned long low = 0;
                        if (!literal("\\u") || !hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    utf8(out, cp);
                    break;
                }
                default: return false;
            }
        }
        return false;
    }
    bool number(json& v) {
        const std::size_t start = pos_;
        if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
        const std::size_t digits = pos_;
        while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
        if (pos_ == digits) return false;
        bool integral = true;
        if (pos_ < s_.size() && s_[pos_] == '.') {
            integral = false;
            ++pos_;
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
        }
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            integral = false;
            ++pos_;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
        }
        const std::string text(s_.substr(start, pos_ - start));
        v.kind = json::type::number;
        v.number = std::strtod(text.c_str(), nullptr);
        if (integral) {
            errno = 0;
            v.integer = std::strtoll(text.c_str(), nullptr, 10);
            v.integral = errno == 0;
        }
        return true;
    }
};

inline std::optional<json> parse_json(std::string_view text) { return json_parser(text).parse(); }

}  // namespace detail

// WeChat's errcode in an API answer: the integer "errcode" member at the top level of a JSON
// object, or 0 when there is none or the text is not JSON. Only the top level counts: an
// answer that carries another object's "errcode" inside (a nested payload, an echoed request)
// is not a rejection of the token.
inline long long errcode_in_json(std::string_view text) {
    const auto v = detail::parse_json(text);
    if (!v) return 0;
    const detail::json* e = v->find("errcode");
    return e && e->kind == detail::json::type::number && e->integral ? e->integer : 0;
}

// An exception extractor for with_token, for SDKs whose exceptions carry WeChat's JSON answer
// as their what(): the errcode found there by errcode_in_json.
inline long long errcode_in_what(const std::exception& e) { return errcode_in_json(e.what()); }

// The WeChat errcode with_token finds in a call's result when no extractor is given:
//  - an integral result is the errcode itself;
//  - a string (std::string, std::string_view, const char*) is WeChat's JSON answer: its
//    top-level "errcode" (see errcode_in_json);
//  - a std::pair<T, E> or std::tuple<..., E> carries it in its last element;
//  - a class with an `errcode` data member carries it there (0 / absent = success).
// For anything else, pass an extractor to with_token.
template <class R>
long long errcode_of(const R& r) {
    using T = std::decay_t<R>;
    if constexpr (std::is_integral_v<T>) {
        return static_cast<long long>(r);
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        return errcode_in_json(std::string_view(r));
    } else if constexpr (detail::is_pair<T>::value) {
        return static_cast<long long>(r.second);
    } else if constexpr (detail::is_tuple<T>::value) {
        return static_cast<long long>(std::get<std::tuple_size_v<T> - 1>(r));
    } else if constexpr (detail::has_errcode_member<T>::value) {
        return static_cast<long long>(r.errcode);
    } else {
        static_assert(detail::dependent_false<T>,
                      "wx_token::with_token: cannot find a WeChat errcode in this result type; "
                      "return an int, a JSON string, a std::pair<T, int>, or a struct with an `errcode` member, "
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

// Registers an app without a secret, for client mode: `opts.central` and `opts.central_key`
// name the wx-tokend server that holds the secret. Throws error (INVALID_ARGUMENT) when they
// are missing.
inline void register_app(const std::string& appid, const options& opts) {
    constexpr const char* fn = "wx_token_register";
    const std::string json = opts.to_json();
    detail::check(::wx_token_register(detail::c_str(appid, "appid", fn), nullptr, detail::c_str(json, "options", fn)),
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

// The options_json keys this library accepts (wx_token_options_schema), as JSON:
// {"KEY": {"type": "string"|"integer", "default": VALUE or null, "meaning": "..."}}.
inline std::string options_schema() { return ::wx_token_options_schema(); }

// ---- stats -------------------------------------------------------------------------------------

// Failed fetches with one status and errcode.
struct failure_count {
    int status = 0;          // WX_* (-1 for a status this header's library does not name)
    std::string status_name; // "WECHAT_ERROR", "NETWORK", ...
    int errcode = 0;         // WeChat's errcode, 0 if none
    std::uint64_t count = 0;
};

// An app's counters since it was registered in this process (wx_token_stats_json).
struct app_stats {
    std::uint64_t fetches = 0;                 // upstream requests, background refreshes included
    double fetch_seconds_total = 0;            // time spent in them
    std::optional<double> last_fetch_seconds;  // the latest one's, none before the first
    std::uint64_t tokens_from_store = 0;       // tokens taken over from a shared store
    std::vector<failure_count> failures;       // by status and errcode
};

namespace detail {
inline std::uint64_t json_u64(const json& v, std::string_view key) {
    const json* m = v.find(key);
    return m && m->kind == json::type::number && m->integral && m->integer > 0 ? static_cast<std::uint64_t>(m->integer) : 0;
}
inline int status_code(const std::string& name) {
    for (int code = 0; code < 64; ++code) {
        if (name == ::wx_status_name(code)) return code;
    }
    return -1;
}
inline std::string json_text(const json& v, std::string_view key) {
    const json* m = v.find(key);
    return m && m->kind == json::type::string ? m->string : std::string();
}
inline double json_double(const json& v, std::string_view key) {
    const json* m = v.find(key);
    return m && m->kind == json::type::number ? m->number : 0.0;
}
}  // namespace detail

// The counters of `appid` (wx_token_stats_json), for monitoring. Never does I/O. Throws error
// (UNKNOWN_APP, INVALID_ARGUMENT).
inline app_stats stats(const std::string& appid) {
    constexpr const char* fn = "wx_token_stats_json";
    const char* id = detail::c_str(appid, "appid", fn);
    const std::string buf = detail::read_sized(512, fn, [&](char* out, std::size_t size, std::size_t* len) {
        return ::wx_token_stats_json(id, out, size, len);
    });
    const auto v = detail::parse_json(buf);
    if (!v || v->kind != detail::json::type::object) {
        throw error(WX_PROTOCOL, 0, "the library's stats are not a JSON object: " + buf, fn);
    }
    app_stats out;
    out.fetches = detail::json_u64(*v, "fetches");
    out.fetch_seconds_total = detail::json_double(*v, "fetch_seconds_total");
    if (const auto* last = v->find("last_fetch_seconds"); last && last->kind == detail::json::type::number) {
        out.last_fetch_seconds = last->number;
    }
    out.tokens_from_store = detail::json_u64(*v, "tokens_from_store");
    if (const auto* failures = v->find("failures"); failures && failures->kind == detail::json::type::array) {
        for (const auto& f : failures->items) {
            failure_count c;
            c.status_name = detail::json_text(f, "status");
            c.status = detail::status_code(c.status_name);
            c.errcode = static_cast<int>(detail::json_double(f, "errcode"));
            c.count = detail::json_u64(f, "count");
            out.failures.push_back(std::move(c));
        }
    }
    return out;
}

// ---- JS-SDK: tickets and signatures -----------------------------------------------------------

// The JS-SDK tickets (wx_ticket_get's `kind`): jsapi (mp: signs wx.config; WeCom: the corp
// ticket for WeCom's wx.config), wx_card (mp: the card api_ticket for card_signature),
// agent_config (WeCom: the app's ticket for wx.agentConfig; needs options::agentid).
enum class ticket_kind { jsapi, wx_card, agent_config };

// The C ABI's name of a kind: "jsapi", "wx_card", "agent_config".
inline const char* ticket_kind_name(ticket_kind kind) noexcept {
    switch (kind) {
        case ticket_kind::wx_card: return "wx_card";
        case ticket_kind::agent_config: return "agent_config";
        case ticket_kind::jsapi: break;
    }
    return "jsapi";
}

// A valid JS-SDK ticket of `kind` for `id` (an mp appid or a WeCom id), with the token's
// guarantees (wx_ticket_get): cached without I/O, or fetched once for every thread and process
// sharing the app's store. Throws error: INVALID_ARGUMENT (also a kind the id's platform does not
// have), UNKNOWN_APP, RATE_LIMITED (WeCom's hourly limit), WECHAT_ERROR, NETWORK, PROTOCOL, STORE.
inline std::string ticket(const std::string& id, ticket_kind kind = ticket_kind::jsapi) {
    constexpr const char* fn = "wx_ticket_get";
    const char* app = detail::c_str(id, "id", fn);
    return detail::read_sized(WX_TOKEN_MAX_LEN + 1, fn, [&](char* buf, std::size_t size, std::size_t* len) {
        return ::wx_ticket_get(app, ticket_kind_name(kind), buf, size, len);
    });
}

// A page's wx.config failed with "invalid signature" although its URL was right
// (wx_ticket_invalidate): if `stale_ticket` is still the cached ticket, it is replaced by one
// fetch however many callers report it; otherwise nothing happens. Throws error, e.g.
// RATE_LIMITED when the passive refresh pacing refuses (the ticket stays in service).
inline void invalidate_ticket(const std::string& id, ticket_kind kind, const std::string& stale_ticket) {
    constexpr const char* fn = "wx_ticket_invalidate";
    detail::check(::wx_ticket_invalidate(detail::c_str(id, "id", fn), ticket_kind_name(kind),
                                         detail::c_str(stale_ticket, "stale_ticket", fn)),
                  fn);
}

// What a page passes to wx.config (kind jsapi: app_id, timestamp, nonce_str, signature; app_id
// is a WeCom id's corpid) or to WeCom's wx.agentConfig (kind agent_config: corpid, agentid, ...).
struct jssdk_params {
    ticket_kind kind = ticket_kind::jsapi;
    std::string app_id;     // wx.config's appId ("" for wx.agentConfig)
    std::string corpid;     // wx.agentConfig's corpid ("" for wx.config)
    std::string agentid;    // wx.agentConfig's agentid, as a string ("" for wx.config)
    std::string timestamp;  // seconds since the epoch, as a string
    std::string nonce_str;  // 16 characters from the OS's CSPRNG, new on every call
    std::string signature;  // 40 lowercase hex digits
    std::string json;       // the library's JSON object, ready for the page

    // The object for the page with "jsApiList" added; safe inside a <script> (no raw '<').
    std::string to_json(const std::vector<std::string>& js_api_list) const {
        std::string out = json.substr(0, json.rfind('}'));
        out += ",\"jsApiList\":[";
        for (std::size_t i = 0; i < js_api_list.size(); ++i) {
            if (i) out += ',';
            std::string item;
            options::append_json_string(item, js_api_list[i]);
            for (char c : item) {
                if (c == '<') out += "\\u003c";
                else if (c == '>') out += "\\u003e";
                else out += c;
            }
        }
        out += "]}";
        return out;
    }
};

// The wx.config (or, with ticket_kind::agent_config, wx.agentConfig) of the page at `url` (its
// full URL; the library cuts it at '#'): a fresh nonce, the current time and the signature with
// the current ticket (wx_jssdk_config). Throws error: INVALID_ARGUMENT (an empty URL or one with
// control characters, wx_card, agent_config without options::agentid), or as ticket().
inline jssdk_params jssdk_config(const std::string& id, const std::string& url, ticket_kind kind = ticket_kind::jsapi) {
    constexpr const char* fn = "wx_jssdk_config";
    const char* app = detail::c_str(id, "id", fn);
    const char* page = detail::c_str(url, "url", fn);
    jssdk_params p;
    p.kind = kind;
    p.json = detail::read_sized(WX_JSSDK_CONFIG_MAX_LEN + 1, fn, [&](char* buf, std::size_t size, std::size_t* len) {
        return ::wx_jssdk_config(app, ticket_kind_name(kind), page, buf, size, len);
    });
    const auto v = detail::parse_json(p.json);
    if (!v || v->kind != detail::json::type::object) {
        throw error(WX_PROTOCOL, 0, "the library's wx.config is not a JSON object: " + p.json, fn);
    }
    p.app_id = detail::json_text(*v, "appId");
    p.corpid = detail::json_text(*v, "corpid");
    p.agentid = detail::json_text(*v, "agentid");
    p.timestamp = detail::json_text(*v, "timestamp");
    p.nonce_str = detail::json_text(*v, "nonceStr");
    p.signature = detail::json_text(*v, "signature");
    return p;
}

// WeChat's JS-SDK signature (wx_jssdk_signature): lowercase hex sha1("jsapi_ticket=" ticket
// "&noncestr=" noncestr "&timestamp=" timestamp "&url=" url), values raw, url cut at '#'. Pure.
inline std::string jssdk_signature(const std::string& ticket, const std::string& noncestr, const std::string& timestamp,
                                   const std::string& url) {
    constexpr const char* fn = "wx_jssdk_signature";
    char out[WX_SIGNATURE_LEN + 1];
    detail::check(::wx_jssdk_signature(detail::c_str(ticket, "ticket", fn), detail::c_str(noncestr, "noncestr", fn),
                                       detail::c_str(timestamp, "timestamp", fn), detail::c_str(url, "url", fn), out,
                                       sizeof out),
                  fn);
    return std::string(out, WX_SIGNATURE_LEN);
}

// WeChat's cardSign (wx_card_signature): lowercase hex SHA-1 of `values` (the wx_card ticket,
// timestamp, card_id, code, openid, nonce_str, ...) sorted by their bytes and concatenated.
// Throws error (INVALID_ARGUMENT) for no values or more than WX_CARD_MAX_VALUES. Pure.
inline std::string card_signature(const std::vector<std::string>& values) {
    constexpr const char* fn = "wx_card_signature";
    std::vector<const char*> ptrs;
    ptrs.reserve(values.size());
    for (const auto& v : values) ptrs.push_back(detail::c_str(v, "value", fn));
    char out[WX_SIGNATURE_LEN + 1];
    detail::check(::wx_card_signature(ptrs.empty() ? nullptr : ptrs.data(), ptrs.size(), out, sizeof out), fn);
    return std::string(out, WX_SIGNATURE_LEN);
}

// ---- events ------------------------------------------------------------------------------------

// Event severity (wx_event.level).
enum class level : std::int32_t {
    debug = WX_LEVEL_DEBUG,
    info = WX_LEVEL_INFO,
    warn = WX_LEVEL_WARN,
    error = WX_LEVEL_ERROR,
};

// Something an operator should know (see wx_event in wx_token.h); copied, so it may be kept.
// Never contains a secret or a whole token.
struct event {
    wx_token::level level = wx_token::level::info;
    std::string app;      // the appid, or "" for a process-wide event
    std::string kind;     // "token_fetched", "refresh_failed", "token_expired", "store_unavailable", ...
    std::string message;  // one line for a human
    int status = 0;       // WX_* status of the failure reported, WX_OK for good news
    int errcode = 0;      // WeChat's errcode (e.g. 40164: IP not whitelisted), 0 if none
};

using event_handler = std::function<void(const event&)>;

namespace detail {
struct handler_state {
    std::mutex setter;  // serialises set_event_handler calls (never taken by a handler)
    event_handler* current = nullptr;
    std::atomic<std::uint64_t> exceptions{0};
};
// Leaked on purpose: the library may call the handler from its threads until exit.
inline handler_state& handlers() {
    static handler_state* state = new handler_state();
    return *state;
}
inline thread_local int in_handler = 0;

inline void on_event(void* user_data, const wx_event* e) noexcept {
    ++in_handler;
    try {
        event ev;
        ev.level = static_cast<wx_token::level>(e->level);
        ev.app = e->app;
        ev.kind = e->kind;
        ev.message = e->message;
        ev.status = static_cast<int>(e->status);
        ev.errcode = static_cast<int>(e->errcode);
        (*static_cast<event_handler*>(user_data))(ev);
    } catch (...) {
        // An exception must never unwind into the library (it would abort the process).
        handlers().exceptions.fetch_add(1, std::memory_order_relaxed);
    }
    --in_handler;
}
}  // namespace detail

// Sends the library's events at or above `min_level` to `handler`, for the whole process,
// replacing the previous handler (an empty handler removes it). The handler runs on library
// threads and on threads inside get/invalidate, possibly on several at once, so it must be
// thread-safe; it may call into wx_token (get, stats, ...). Exceptions it throws are caught
// and counted (event_handler_exceptions()), never passed on. When this returns, the previous
// handler is not running anywhere and has been destroyed. Calling it from inside a handler
// throws error (INVALID_ARGUMENT): it would wait for itself.
inline void set_event_handler(event_handler handler, level min_level = level::info) {
    constexpr const char* fn = "wx_set_event_callback";
    if (detail::in_handler > 0) {
        throw error(WX_INVALID_ARGUMENT, 0, "cannot change the event handler from inside an event handler", fn);
    }
    auto& state = detail::handlers();
    std::unique_ptr<event_handler> next(handler ? new event_handler(std::move(handler)) : nullptr);
    std::lock_guard<std::mutex> lock(state.setter);
    detail::check(::wx_set_event_callback(next ? &detail::on_event : nullptr, next.get(),
                                          static_cast<std::int32_t>(min_level)),
                  fn);
    // The library has waited for calls of the previous handler to return: it can go.
    delete state.current;
    state.current = next.release();
}

// Removes the event handler (see set_event_handler).
inline void clear_event_handler() { set_event_handler(nullptr); }

// How many exceptions event handlers have thrown (and the wrapper swallowed) in this process.
inline std::uint64_t event_handler_exceptions() noexcept {
    return detail::handlers().exceptions.load(std::memory_order_relaxed);
}

// The default result extractor of with_token: wx_token::errcode_of.
struct default_errcode {
    template <class R>
    long long operator()(const R& r) const {
        return errcode_of(r);
    }
};

// The default exception extractor of with_token: no exception is a rejection of the token,
// so every exception propagates unchanged.
struct no_exception_errcode {
    long long operator()(std::exception_ptr) const noexcept { return 0; }
};

namespace detail {
// Asks `x` for the errcode in the exception being handled: `x` takes a std::exception_ptr, or a
// const std::exception& (then other exceptions carry none).
template <class X>
long long errcode_of_exception(X& x, std::exception_ptr ep) {
    if constexpr (std::is_invocable_v<X&, std::exception_ptr>) {
        return static_cast<long long>(x(ep));
    } else {
        static_assert(std::is_invocable_v<X&, const std::exception&>,
                      "wx_token::with_token: the exception extractor must take a std::exception_ptr "
                      "or a const std::exception&");
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            return static_cast<long long>(x(e));
        } catch (...) {
            return 0;
        }
    }
}
}  // namespace detail

// Calls `call(token)` with the current token for `appid` and returns its result. If WeChat
// rejected that token (errcode 40001, 42001 or 40014), found either by `errcode(result)` in
// the result or by `exception_errcode(...)` in an exception the call threw, the token is
// invalidated and `call` is made once more with the new token; the second call's result is
// returned, or its exception propagates, whatever it is (never more than two calls).
//
// `errcode` defaults to errcode_of (an integer, a JSON string's top-level "errcode", a pair or
// tuple whose last element is the errcode, or a struct's `errcode` member). `exception_errcode`
// takes a std::exception_ptr or a const std::exception& and returns the errcode the exception
// carries (0 if none): for SDKs that throw on an errcode, e.g.
//   [](const std::exception& e) { auto* x = dynamic_cast<const sdk_error*>(&e); return x ? x->code : 0; }
// or wx_token::errcode_in_what for exceptions whose what() is WeChat's JSON answer. Exceptions
// it finds no token errcode in propagate unchanged. Errors of the library (getting the token,
// or invalidating it, e.g. RATE_LIMITED) are thrown as wx_token::error.
template <class F, class E = default_errcode, class X = no_exception_errcode>
auto with_token(const std::string& appid, F&& call, E&& errcode = E{}, X&& exception_errcode = X{})
    -> std::decay_t<std::invoke_result_t<F&, const std::string&>> {
    using R = std::decay_t<std::invoke_result_t<F&, const std::string&>>;
    static_assert(!std::is_void_v<R>, "wx_token::with_token: the call must return its result (or errcode)");
    std::string token = get(appid);
    std::optional<R> first;
    try {
        first.emplace(call(static_cast<const std::string&>(token)));
    } catch (const wx_token::error&) {
        throw;  // the library's own errors are not WeChat's answer
    } catch (...) {
        if (!is_token_errcode(detail::errcode_of_exception(exception_errcode, std::current_exception()))) throw;
    }
    if (first && !is_token_errcode(static_cast<long long>(errcode(static_cast<const R&>(*first))))) {
        return std::move(*first);
    }
    invalidate(appid, token);
    token = get(appid);
    return call(static_cast<const std::string&>(token));
}

}  // namespace wx_token

#endif  // WX_TOKEN_HPP
