/* The C peer of scripts/fleet_xlang.py: registers one mp app and one WeCom id (from the
 * environment, see that script), waits at the barrier file, then gets the mp token, the mp
 * jsapi ticket and the WeCom token several times from several threads, and prints one
 * fingerprint (FNV-1a 64, never the value) of each: the fleet must agree on all of them. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wx_token.h"

#define THREADS 4
#define ROUNDS 5

static const char *mp, *wecom;

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v ? v : "";
}

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 14695981039346656037ULL;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int fail(const char *what, int rc) {
    char msg[512];
    wx_last_error_message(msg, sizeof msg);
    fprintf(stderr, "c: %s: %s (errcode %d): %s\n", what, wx_status_name(rc), (int)wx_last_errcode(), msg);
    return 1;
}

struct result { uint64_t fp[3]; int failed; };

static void *worker(void *arg) {
    struct result *r = arg;
    char buf[WX_TOKEN_MAX_LEN + 1];
    size_t len = 0;
    int i, k, rc;
    for (i = 0; i < ROUNDS; i++) {
        for (k = 0; k < 3; k++) {
            if (k == 0) rc = wx_token_get(mp, buf, sizeof buf, &len);
            else if (k == 1) rc = wx_ticket_get(mp, "jsapi", buf, sizeof buf, &len);
            else rc = wx_token_get(wecom, buf, sizeof buf, &len);
            if (rc != WX_OK) { r->failed = fail(k == 1 ? "wx_ticket_get" : "wx_token_get", rc); return NULL; }
            if (i > 0 && r->fp[k] != fnv1a(buf, len)) { fprintf(stderr, "c: value %d changed\n", k); r->failed = 1; }
            r->fp[k] = fnv1a(buf, len);
        }
    }
    return NULL;
}

static int register_all(void) {
    char opts[2048];
    const char *central = env("WXF_CENTRAL");
    int rc;
    if (*central) {
        snprintf(opts, sizeof opts, "{\"central\":\"%s\",\"central_key\":\"%s\"}", central, env("WXF_CENTRAL_KEY"));
        rc = wx_token_register(mp, NULL, opts);
        snprintf(opts, sizeof opts, "{\"central\":\"%s\",\"central_key\":\"%s\",\"platform\":\"wecom\",\"corpid\":\"%s\",\"agentid\":%s}",
                 central, env("WXF_CENTRAL_KEY"), env("WXF_CORPID"), env("WXF_AGENTID"));
        if (rc == WX_OK) rc = wx_token_register(wecom, NULL, opts);
    } else {
        snprintf(opts, sizeof opts, "{\"api_base\":\"%s\",\"endpoint\":\"classic\",\"store\":\"%s\",\"store_prefix\":\"%s\"}",
                 env("WXF_API_BASE"), env("WXF_STORE"), env("WXF_STORE_PREFIX"));
        rc = wx_token_register(mp, env("WXF_MP_SECRET"), opts);
        snprintf(opts, sizeof opts, "{\"api_base\":\"%s\",\"platform\":\"wecom\",\"corpid\":\"%s\",\"agentid\":%s,\"store\":\"%s\",\"store_prefix\":\"%s\"}",
                 env("WXF_API_BASE"), env("WXF_CORPID"), env("WXF_AGENTID"), env("WXF_STORE"), env("WXF_STORE_PREFIX"));
        if (rc == WX_OK) rc = wx_token_register(wecom, env("WXF_WECOM_SECRET"), opts);
    }
    return rc == WX_OK ? 0 : fail("wx_token_register", rc);
}

int main(void) {
    pthread_t th[THREADS];
    struct result res[THREADS];
    struct timespec nap = {0, 2000000};
    int i, k, failed = 0;
    mp = env("WXF_MP");
    wecom = env("WXF_WECOM");
    if (register_all()) return 1;
    printf("ready\n");
    fflush(stdout);
    while (access(env("WXF_BARRIER"), F_OK) != 0) nanosleep(&nap, NULL);
    memset(res, 0, sizeof res);
    for (i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, worker, &res[i]);
    for (i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    for (i = 0; i < THREADS; i++)
        for (k = 0; k < 3; k++) failed |= res[i].failed || res[i].fp[k] != res[0].fp[k];
    if (failed) { fprintf(stderr, "c: the threads disagree or failed\n"); return 1; }
    printf("mp_token %016llx\njsapi %016llx\nwecom_token %016llx\n", (unsigned long long)res[0].fp[0],
           (unsigned long long)res[0].fp[1], (unsigned long long)res[0].fp[2]);
    wx_token_shutdown();
    return 0;
}
