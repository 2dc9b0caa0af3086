/*
 * The main job, through the C ABI: fetch a token, serve it from the cache, watch it being
 * refreshed ahead of expiry with nobody asking, and replace it after a passive refresh.
 *
 * Run it with scripts/demo.sh. Environment:
 *   WX_APPID, WX_SECRET   the app (scripts/demo.sh sets the fake's demo app when unset)
 *   WX_OPTIONS            options_json for wx_token_register (the fake's api_base, or empty)
 *   WX_DEMO_WAIT_REFRESH  1 to wait for the background refresh (the fake issues short-lived tokens)
 *   WX_DEMO_INVALIDATE    1 to demonstrate the passive refresh
 * It prints token prefixes only: a whole token is a credential.
 */
#define _POSIX_C_SOURCE 200809L
#include "wx_token.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, int status) {
    char msg[1024];
    wx_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s failed: %s (status %d, errcode %d): %s\n", what, wx_status_name(status), status,
            wx_last_errcode(), msg);
    return 1;
}

static int flag(const char *name) {
    const char *v = getenv(name);
    return v != NULL && strcmp(v, "1") == 0;
}

int main(void) {
    const char *appid = getenv("WX_APPID");
    const char *secret = getenv("WX_SECRET");
    const char *options = getenv("WX_OPTIONS");
    char token[WX_TOKEN_MAX_LEN + 1], prev[WX_TOKEN_MAX_LEN + 1];
    uint64_t generation = 0, expires_ms = 0;
    const uint64_t *counter = NULL;
    size_t len = 0;
    int rc, i;
    double t0, elapsed;

    if (appid == NULL || secret == NULL) {
        fprintf(stderr, "set WX_APPID and WX_SECRET (scripts/demo.sh does it for the local fake)\n");
        return 2;
    }
    if (options != NULL && options[0] == '\0') {
        options = NULL;
    }
    printf("wx_token %s\n", wx_token_version());

    if ((rc = wx_token_register(appid, secret, options)) != WX_OK) return fail("register", rc);
    if ((rc = wx_token_generation_counter(appid, &counter)) != WX_OK) return fail("generation_counter", rc);

    t0 = now_s();
    if ((rc = wx_token_get_ex(appid, token, sizeof token, &len, &generation, &expires_ms)) != WX_OK)
        return fail("get", rc);
    printf("fetched:     %.8s... (%zu bytes, generation %llu, valid %llu s) in %.1f ms\n", token, len,
           (unsigned long long)generation, (unsigned long long)(expires_ms / 1000), (now_s() - t0) * 1e3);

    t0 = now_s();
    for (i = 0; i < 1000000; i++) {
        if ((rc = wx_token_get(appid, prev, sizeof prev, &len)) != WX_OK) return fail("cached get", rc);
    }
    elapsed = now_s() - t0;
    printf("cached:      1,000,000 gets in %.0f ms (%.0f ns each), same token: %s\n", elapsed * 1e3, elapsed * 1e3,
           strcmp(prev, token) == 0 ? "yes" : "NO");

    if (flag("WX_DEMO_WAIT_REFRESH")) {
        printf("waiting:     for the refresh ahead of expiry, with no caller asking...\n");
        t0 = now_s();
        while (*(volatile const uint64_t *)counter == generation) {
            if (now_s() - t0 > 120) {
                fprintf(stderr, "no refresh within 120 s\n");
                return 1;
            }
            struct timespec pause = {0, 50 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        if ((rc = wx_token_get_ex(appid, token, sizeof token, &len, &generation, &expires_ms)) != WX_OK)
            return fail("get after refresh", rc);
        printf("refreshed:   %.8s... (generation %llu, valid %llu s) after %.1f s, in the background\n", token,
               (unsigned long long)generation, (unsigned long long)(expires_ms / 1000), now_s() - t0);
    }

    if (flag("WX_DEMO_INVALIDATE")) {
        memcpy(prev, token, sizeof token);
        /* What a caller does when WeChat answered 40001/42001/40014 for this token. */
        if ((rc = wx_token_invalidate(appid, prev)) != WX_OK) return fail("invalidate", rc);
        if ((rc = wx_token_get_ex(appid, token, sizeof token, &len, &generation, &expires_ms)) != WX_OK)
            return fail("get after invalidate", rc);
        printf("invalidated: %.8s... replaced by %.8s... (generation %llu)\n", prev, token,
               (unsigned long long)generation);
        if (strcmp(prev, token) == 0) {
            fprintf(stderr, "the invalidated token is still handed out\n");
            return 1;
        }
    }

    wx_token_shutdown();
    printf("done\n");
    return 0;
}
