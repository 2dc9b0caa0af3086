/*
 * get_token.c: get an access_token with wx_token and call a WeChat API with it, in C.
 *
 * Against the project's fake WeChat (default):
 *     wx-fake-wechat --listen 127.0.0.1:8088 &      # registers wx_demo_appid / demo_secret
 *     ./get_token_c                                  # or WX_API_BASE=http://127.0.0.1:PORT
 * Against the real WeChat (needs the libcurl build, see example_http.h):
 *     WX_APPID=wx... WX_SECRET=... ./get_token_c
 *
 * It shows the passive refresh a C caller does by hand: if WeChat rejects the token with
 * 40001, 42001 or 40014, wx_token_invalidate(appid, that_token), get the new one, retry once.
 * Exit status: 0 on success, 1 on a failure, 2 on bad configuration.
 */
#include <wx_token.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_http.h"

static void print_error(const char *what, int32_t status) {
    char msg[512];
    wx_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s failed: %s (errcode %d): %s\n", what, wx_status_name(status), (int)wx_last_errcode(), msg);
}

static int is_token_errcode(long e) { return e == 40001 || e == 42001 || e == 40014; }

/* One API call with `token`; returns WeChat's errcode (0 = success), or -1 on a transport error. */
static long call_api(const char *api_base, const char *token, char **body) {
    char err[256];
    char *url = wx_example_api_url(api_base, token);
    int rc;
    *body = NULL;
    if (!url) return -1;
    rc = wx_example_http_get(url, body, err, sizeof err);
    free(url);
    if (rc != 0) {
        fprintf(stderr, "WeChat API call failed: %s\n", err);
        return -1;
    }
    return wx_example_errcode(*body);
}

int main(void) {
    const char *appid = getenv("WX_APPID"), *secret = getenv("WX_SECRET");
    const char *api_base = getenv("WX_API_BASE"), *endpoint = getenv("WX_ENDPOINT");
    char options[1024], token[WX_TOKEN_MAX_LEN + 1];
    size_t len = 0;
    int32_t st;
    long errcode;
    char *body = NULL;
    int rc = 1;

    if (!appid || !secret) { /* the fake's demo app */
        appid = "wx_demo_appid";
        secret = "demo_secret";
        if (!api_base) api_base = "http://127.0.0.1:8088";
        /* The demo credentials are for the local fake only (plain http, which the library
           allows only on loopback); never send them to WeChat. */
        if (strncmp(api_base, "http://", 7) != 0) {
            fprintf(stderr, "set WX_APPID and WX_SECRET to use %s\n", api_base);
            return 2;
        }
    }
    if (!api_base) api_base = "https://api.weixin.qq.com";
    if (!endpoint) endpoint = "stable";
    /* Only URL characters are expected here; refuse anything that would need JSON escaping. */
    if (strpbrk(api_base, "\"\\") || strpbrk(endpoint, "\"\\") ||
        snprintf(options, sizeof options, "{\"api_base\":\"%s\",\"endpoint\":\"%s\"}", api_base, endpoint) >=
            (int)sizeof options) {
        fprintf(stderr, "bad WX_API_BASE or WX_ENDPOINT\n");
        return 2;
    }

    printf("wx_token %s, app %s, %s (HTTP: %s)\n", wx_token_version(), appid, api_base, WX_EXAMPLE_HTTP_CLIENT);
    if ((st = wx_token_register(appid, secret, options)) != WX_OK) {
        print_error("wx_token_register", st);
        return 2;
    }
    if (wx_example_http_init() != 0) {
        fprintf(stderr, "HTTP client initialisation failed\n");
        return 1;
    }
    if ((st = wx_token_get(appid, token, sizeof token, &len)) != WX_OK) {
        print_error("wx_token_get", st);
        goto out;
    }
    /* A token is a credential: show only its start. */
    printf("token: %.6s... (%zu bytes)\n", token, len);

    errcode = call_api(api_base, token, &body);
    if (is_token_errcode(errcode)) {
        printf("WeChat rejected the token (errcode %ld): passive refresh\n", errcode);
        free(body);
        body = NULL;
        if ((st = wx_token_invalidate(appid, token)) != WX_OK) {
            print_error("wx_token_invalidate", st);
            goto out;
        }
        if ((st = wx_token_get(appid, token, sizeof token, &len)) != WX_OK) {
            print_error("wx_token_get", st);
            goto out;
        }
        printf("new token: %.6s... (%zu bytes)\n", token, len);
        errcode = call_api(api_base, token, &body);
    }
    if (errcode != 0) {
        if (errcode > 0) fprintf(stderr, "WeChat API error %ld: %s\n", errcode, body ? body : "");
        goto out;
    }
    printf("get_api_domain_ip: %s\n", body);
    rc = 0;
out:
    free(body);
    wx_example_http_cleanup();
    /* Stop the background refresher before exit (joins its thread). */
    wx_token_shutdown();
    return rc;
}
