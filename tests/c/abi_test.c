/*
 * The C ABI exercised from C (compiled as C11) and C++ (compiled as C++17), against the
 * project's fake WeChat. Driven by tests/c_abi.rs, which starts the fake and passes:
 *   WX_TEST_API_BASE  the fake's base URL
 *   WX_TEST_APPID     an app the fake knows
 *   WX_TEST_SECRET    its secret
 * Prints "N passed, N failed" and exits non-zero on any failure.
 */
#include "wx_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL) {
        fprintf(stderr, "missing environment variable %s\n", name);
        exit(2);
    }
    return v;
}

static void last_message(char *buf, size_t len) {
    size_t full = wx_last_error_message(buf, len);
    (void)full;
}

/* What the event callback saw. */
struct seen {
    int fetched;
    int fetched_level;
    char fetched_app[130];
    int get_inside_ok;
    int failed_errcode;
    int failed_level;
};

static void on_event(void *user_data, const wx_event *event) {
    struct seen *s = (struct seen *)user_data;
    if (strcmp(event->kind, "token_fetched") == 0) {
        char tok[WX_TOKEN_MAX_LEN + 1];
        s->fetched++;
        s->fetched_level = event->level;
        snprintf(s->fetched_app, sizeof s->fetched_app, "%s", event->app);
        /* Calling back into the library from the callback is allowed. */
        s->get_inside_ok = wx_token_get(event->app, tok, sizeof tok, NULL) == WX_OK;
    } else if (strcmp(event->kind, "refresh_failed") == 0) {
        s->failed_errcode = event->errcode;
        s->failed_level = event->level;
    }
}

int main(void) {
    const char *base = env("WX_TEST_API_BASE");
    const char *appid = env("WX_TEST_APPID");
    const char *secret = env("WX_TEST_SECRET");
    char options[512];
    char token[WX_TOKEN_MAX_LEN + 1];
    char again[WX_TOKEN_MAX_LEN + 1];
    char msg[1024];
    size_t len = 0;
    struct seen seen;
    memset(&seen, 0, sizeof seen);

    snprintf(options, sizeof options,
             "{\"api_base\":\"%s\",\"endpoint\":\"classic\",\"retry_min_ms\":50,\"error_cooldown_ms\":200}", base);

    CHECK(strcmp(wx_token_version(), "") != 0);
    CHECK(strcmp(wx_status_name(WX_NETWORK), "NETWORK") == 0);

    /* Registration and argument checking. */
    CHECK(wx_token_register(appid, secret, options) == WX_OK);
    CHECK(wx_token_register(NULL, secret, options) == WX_INVALID_ARGUMENT);
    last_message(msg, sizeof msg);
    CHECK(strstr(msg, "appid") != NULL);
    CHECK(wx_token_register(appid, secret, "{\"refresh_ahead\":1}") == WX_INVALID_ARGUMENT);
    CHECK(wx_token_register(appid, secret, "{\"api_base\":\"http://example.com\"}") == WX_INVALID_ARGUMENT);
    CHECK(wx_token_register("wx\xff", secret, NULL) == WX_INVALID_ARGUMENT);

    /* Every option is described by the schema. */
    CHECK(strstr(wx_token_options_schema(), "\"store_prefix\":{\"type\":\"string\"") != NULL);

    /* Events: a bad level is refused, then the callback is installed. */
    CHECK(wx_set_event_callback(on_event, &seen, 9) == WX_INVALID_ARGUMENT);
    CHECK(wx_set_event_callback(on_event, &seen, WX_LEVEL_INFO) == WX_OK);

    /* First get fetches; the second is served from the cache. */
    CHECK(wx_token_get(appid, token, sizeof token, &len) == WX_OK);
    CHECK(seen.fetched == 1 && seen.fetched_level == WX_LEVEL_INFO && seen.get_inside_ok);
    CHECK(strcmp(seen.fetched_app, appid) == 0);
    CHECK(len > 0 && len == strlen(token));
    CHECK(wx_last_errcode() == 0);
    CHECK(wx_last_error_message(NULL, 0) == 0);
    CHECK(wx_token_get(appid, again, sizeof again, NULL) == WX_OK);
    CHECK(strcmp(token, again) == 0);

    /* Size query, and a too-small buffer left untouched. */
    {
        size_t need = 0;
        char small[4] = {'x', 'x', 'x', 'x'};
        CHECK(wx_token_get(appid, NULL, 0, &need) == WX_BUFFER_TOO_SMALL);
        CHECK(need == len);
        CHECK(wx_token_get(appid, small, sizeof small, &need) == WX_BUFFER_TOO_SMALL);
        CHECK(small[0] == 'x' && small[3] == 'x');
        CHECK(wx_token_get(appid, NULL, 10, &need) == WX_INVALID_ARGUMENT);
    }

    /* get_ex and the generation counter agree. */
    {
        uint64_t generation = 0, expires_ms = 0;
        const uint64_t *counter = NULL;
        CHECK(wx_token_get_ex(appid, again, sizeof again, &len, &generation, &expires_ms) == WX_OK);
        CHECK(wx_token_generation_counter(appid, &counter) == WX_OK);
        CHECK(counter != NULL && *counter == generation);
        CHECK(expires_ms > 0);

        /* Passive refresh: the rejected token is replaced, and the counter moves. */
        CHECK(wx_token_invalidate(appid, token) == WX_OK);
        CHECK(*counter != generation);
        CHECK(wx_token_get(appid, again, sizeof again, &len) == WX_OK);
        CHECK(strcmp(token, again) != 0);
        /* Reporting the old token again changes nothing. */
        CHECK(wx_token_invalidate(appid, token) == WX_OK);
        CHECK(wx_token_get(appid, token, sizeof token, &len) == WX_OK);
        CHECK(strcmp(token, again) == 0);
    }

    /* Errors carry a status, a message and WeChat's errcode. */
    CHECK(wx_token_get("wx_not_registered", token, sizeof token, &len) == WX_UNKNOWN_APP);
    last_message(msg, sizeof msg);
    CHECK(strstr(msg, "not registered") != NULL);
    CHECK(wx_token_register("wx_c_bad_secret", "wrong", options) == WX_OK);
    CHECK(wx_token_get("wx_c_bad_secret", token, sizeof token, &len) == WX_WECHAT_ERROR);
    CHECK(wx_last_errcode() == 40013);
    CHECK(seen.failed_errcode == 40013 && seen.failed_level == WX_LEVEL_WARN);
    last_message(msg, sizeof msg);
    CHECK(strstr(msg, "40013") != NULL && strstr(msg, "wrong") == NULL);

    /* Truncation keeps the NUL and reports the full length. */
    {
        char tiny[5];
        size_t full = wx_last_error_message(tiny, sizeof tiny);
        CHECK(full > sizeof tiny && tiny[4] == '\0');
    }

    /* Removing the callback: nothing more is delivered. */
    CHECK(wx_set_event_callback(NULL, NULL, WX_LEVEL_DEBUG) == WX_OK);
    CHECK(wx_token_invalidate(appid, token) == WX_OK);
    CHECK(seen.fetched == 2); /* the first get and the first invalidation, nothing since */

    CHECK(wx_token_shutdown() == WX_OK);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
