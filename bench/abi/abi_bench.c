/*
 * abi_bench.c: the cost of one plugin call across mcpg's C ABI, measured from a C host.
 *
 * dlopen()s a plugin, creates an instance with a no-op host table, then times `handle` calls whose
 * completion the plugin reports through `complete` (on any thread): the host copies the response, as the
 * kernel does, and publishes completion through an atomic flag. The caller busy-waits on the flag for a
 * few microseconds, then sleeps on a condition variable that `complete` signals only if someone sleeps
 * (ABI_WAIT=hybrid, the default), or only busy-waits (ABI_WAIT=spin: no barrier in `complete`, for measuring
 * the boundary alone with a plugin that completes inline).
 *
 *   sequential  one call in flight: issue, wait for `complete`, repeat (a full round trip per call)
 *   inflight K  K calls issued back to back, then all awaited (the amortized cost per call under load)
 *
 * Usage: abi_bench PLUGIN.so [OP] [CONFIG_JSON] [REQUEST_JSON] [CALLS]
 *   OP defaults to "authenticate"; CONFIG_JSON to "{}"; REQUEST_JSON to a 200-byte authenticate request
 *   (what the HTTP front sends an identity plugin); CALLS to 200000.
 * Prints one line per mode: `abi_bench: plugin=NAME mode=MODE calls=N ns_per_call=X`, and exits 1 on any
 * failure (load error, create error, or a call that completed with an error status).
 *
 * Build: gcc -O2 -pthread -I../../PluginABI/include -o abi_bench abi_bench.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcpg_plugin.h"

/* What the kernel keeps per call: the completion flag and the copied response. */
struct mcpg_call {
    _Atomic int done;
    _Atomic int sleeping;
    int32_t status;
    size_t len;
    uint8_t response[8192];
};

static _Atomic long overflows;
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
/* ABI_WAIT=spin: pure busy-wait (the boundary cost alone, for plugins that complete inline);
 * ABI_WAIT=hybrid (default): spin, then sleep, as a host sharing 2 cores with the plugin's threads must. */
static int hybrid_wait = 1;

static void host_log(void *ctx, int32_t level, mcpg_bytes message, mcpg_bytes metadata) {
    (void)ctx;
    (void)metadata;
    if (level >= MCPG_LOG_WARNING) fprintf(stderr, "abi_bench: plugin log: %.*s\n", (int)message.len, message.ptr);
}
static void host_metric(void *ctx, int32_t kind, mcpg_bytes name, double value, mcpg_bytes labels) {
    (void)ctx;
    (void)kind;
    (void)name;
    (void)value;
    (void)labels;
}
static int32_t host_emit(mcpg_call *call, mcpg_bytes message) {
    (void)call;
    (void)message;
    return -1;
}

static const mcpg_host host = {
    .struct_size = sizeof(mcpg_host),
    .abi_version = MCPG_ABI_VERSION,
    .host_ctx = NULL,
    .log = host_log,
    .metric = host_metric,
    .emit = host_emit,
};

/* The kernel's side of `complete`: copy the borrowed response before returning, then publish. */
static void complete(mcpg_call *call, int32_t status, mcpg_bytes response) {
    size_t n = response.len;
    if (n > sizeof call->response) {
        n = sizeof call->response;
        atomic_fetch_add_explicit(&overflows, 1, memory_order_relaxed);
    }
    if (n) memcpy(call->response, response.ptr, n);
    call->len = n;
    call->status = status;
    if (!hybrid_wait) {
        atomic_store_explicit(&call->done, 1, memory_order_release);
        return;
    }
    atomic_store(&call->done, 1);
    /* Wake the waiter only if it gave up spinning (seq_cst: it either sees `done` or we see `sleeping`). */
    if (atomic_load(&call->sleeping)) {
        pthread_mutex_lock(&wake_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&wake_lock);
    }
}

/* Spin briefly (a plugin that completes inline, or on another core, answers within microseconds), then sleep
 * on a condition variable so a waiting host does not steal the CPU the plugin's threads need (2 cores). */
static void await_call(mcpg_call *call) {
    for (unsigned spins = 0; !hybrid_wait || spins < 20000; spins++) {
        if (atomic_load_explicit(&call->done, memory_order_acquire)) return;
    }
    atomic_store(&call->sleeping, 1);
    if (!atomic_load(&call->done)) {
        pthread_mutex_lock(&wake_lock);
        while (!atomic_load(&call->done)) pthread_cond_wait(&wake, &wake_lock);
        pthread_mutex_unlock(&wake_lock);
    }
    atomic_store(&call->sleeping, 0);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "abi_bench: error: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: abi_bench PLUGIN.so [OP] [CONFIG_JSON] [REQUEST_JSON] [CALLS]\n");
        return 2;
    }
    const char *path = argv[1];
    const char *op = argc > 2 ? argv[2] : "authenticate";
    const char *config = argc > 3 ? argv[3] : "{}";
    char request[4096];
    if (argc > 4) {
        snprintf(request, sizeof request, "%s", argv[4]);
    } else {
        /* 200 bytes: an authenticate request as the HTTP front builds it, padded in the user-agent. */
        const char *head = "{\"transport\":\"http\",\"peer\":{\"address\":\"127.0.0.1:53122\",\"loopback\":true},"
                           "\"headers\":{\"content-type\":\"application/json\",\"user-agent\":\"";
        const char *tail = "\"}}";
        size_t pad = 200 - strlen(head) - strlen(tail);
        char padding[256];
        memset(padding, 'x', pad);
        padding[pad] = 0;
        snprintf(request, sizeof request, "%s%s%s", head, padding, tail);
    }
    long calls = argc > 5 ? atol(argv[5]) : 200000;
    const char *wait_mode = getenv("ABI_WAIT");
    if (wait_mode && strcmp(wait_mode, "spin") == 0) hybrid_wait = 0;
    else if (wait_mode && strcmp(wait_mode, "hybrid") != 0) return fail("ABI_WAIT must be spin or hybrid", wait_mode);
    if (calls < 1000) return fail("CALLS must be at least 1000", NULL);

    double t0 = now_ns();
    void *image = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!image) return fail("dlopen failed", dlerror());
    mcpg_plugin_entry_fn entry = (mcpg_plugin_entry_fn)dlsym(image, MCPG_PLUGIN_ENTRY_SYMBOL);
    if (!entry) return fail("no entry symbol " MCPG_PLUGIN_ENTRY_SYMBOL, path);
    const mcpg_plugin *p = entry();
    if (!p || p->magic != MCPG_PLUGIN_MAGIC) return fail("bad descriptor magic", path);
    if ((p->abi_version >> 16) != MCPG_ABI_MAJOR) return fail("ABI major version mismatch", path);
    if (p->struct_size < sizeof(mcpg_plugin)) return fail("descriptor too small", path);
    double t1 = now_ns();

    void *instance = NULL;
    char error[MCPG_ERROR_CAPACITY] = {0};
    mcpg_bytes cfg = {(const uint8_t *)config, strlen(config)};
    if (p->create(&host, cfg, &instance, error) != MCPG_STATUS_OK) return fail("create failed", error);
    double t2 = now_ns();
    printf("abi_bench: plugin=%s load_ms=%.3f create_ms=%.3f request_bytes=%zu wait=%s\n", p->name,
           (t1 - t0) / 1e6, (t2 - t1) / 1e6, strlen(request), hybrid_wait ? "hybrid" : "spin");

    mcpg_bytes opb = {(const uint8_t *)op, strlen(op)};
    mcpg_bytes req = {(const uint8_t *)request, strlen(request)};

    /* First call: checked and shown, so a benchmark of error answers cannot pass for a fast one. */
    static mcpg_call first;
    p->handle(instance, opb, req, &first, complete);
    await_call(&first);
    printf("abi_bench: plugin=%s first_response=%.*s\n", p->name, (int)(first.len > 160 ? 160 : first.len),
           first.response);
    if (first.status != MCPG_STATUS_OK) return fail("first call completed with an error status", NULL);

    /* Sequential round trips (after a warm-up of a tenth of the calls). */
    static mcpg_call call;
    long errors = 0;
    double start = 0;
    long warm = calls / 10;
    for (long i = -warm; i < calls; i++) {
        if (i == 0) start = now_ns();
        atomic_store_explicit(&call.done, 0, memory_order_relaxed);
        p->handle(instance, opb, req, &call, complete);
        await_call(&call);
        if (call.status != MCPG_STATUS_OK) errors++;
    }
    double seq = (now_ns() - start) / (double)calls;
    printf("abi_bench: plugin=%s mode=sequential calls=%ld ns_per_call=%.1f errors=%ld\n", p->name, calls, seq,
           errors);

    /* K in flight: issue K, await K, repeat. */
    enum { K = 64 };
    static mcpg_call batch[K];
    long rounds = calls / K;
    long batch_errors = 0;
    start = now_ns();
    for (long r = 0; r < rounds; r++) {
        for (int k = 0; k < K; k++) {
            atomic_store_explicit(&batch[k].done, 0, memory_order_relaxed);
            p->handle(instance, opb, req, &batch[k], complete);
        }
        for (int k = 0; k < K; k++) {
            await_call(&batch[k]);
            if (batch[k].status != MCPG_STATUS_OK) batch_errors++;
        }
    }
    double par = (now_ns() - start) / (double)(rounds * K);
    printf("abi_bench: plugin=%s mode=inflight%d calls=%ld ns_per_call=%.1f errors=%ld\n", p->name, K, rounds * K,
           par, batch_errors);

    if (atomic_load(&overflows)) fprintf(stderr, "abi_bench: warning: responses over 8 KiB were truncated\n");
    if (errors || batch_errors) return fail("some calls completed with an error status", NULL);
    /* Instances are destroyed, images never unloaded (as in the kernel). */
    p->destroy(instance);
    return 0;
}
