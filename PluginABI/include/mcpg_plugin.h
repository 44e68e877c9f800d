/*
 * mcpg_plugin.h — the one contract between the mcpg kernel and its plugins.
 *
 * Purpose
 *   A plugin is a shared object (`<name>.so`) exporting exactly one symbol,
 *   `mcpg_plugin_v1`, that returns a pointer to a static `mcpg_plugin`
 *   descriptor. Identity, policy, transform, backend and sink plugins all use
 *   this header; what differs per kind is the JSON carried in the payloads
 *   (documented in SPEC.md, "Plugin payloads", versioned with this ABI).
 *
 * Trust model
 *   Plugins run in the gateway's process and are fully trusted once their
 *   Ed25519 (minisign) signature has been verified against a key from the
 *   gateway's config. The kernel maps exactly the bytes it verified.
 *
 * Version rule
 *   The major version is part of the entry symbol's name and of
 *   `abi_version`; a plugin whose major differs is refused at load. Structs
 *   only grow at the end; each carries its size first so that an older
 *   reader never reads past what a newer writer filled in. Every appended
 *   field names the ABI minor that added it.
 *
 * Memory ownership
 *   Every `mcpg_bytes` passed across the boundary is a borrowed view that is
 *   valid only for the duration of the call that passes it. Whoever needs the
 *   bytes longer copies them. Neither side ever frees memory the other side
 *   allocated. In particular the `response` given to `mcpg_complete_fn` is
 *   borrowed for the duration of that call: the kernel copies it before
 *   `complete` returns, and the plugin may free or reuse it afterwards.
 *
 * Threading
 *   `create` and `destroy` are called once per instance, never concurrently
 *   with `handle` on the same instance. `handle` may be called concurrently
 *   from several threads and must not block: a plugin that does I/O starts it
 *   and returns, then calls `complete` exactly once, from any thread, now or
 *   later. Host functions (`log`, `metric`, `emit`) may be called from any
 *   thread. Only C types cross the boundary: no Swift type, error, closure or
 *   async context.
 *
 * Lifetime
 *   Plugins are never unloaded while the process runs (the kernel opens them
 *   with RTLD_NODELETE). Reloading a plugin means starting a new process.
 */
#ifndef MCPG_PLUGIN_H
#define MCPG_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** "MCPG" in ASCII, the first field of every descriptor. */
#define MCPG_PLUGIN_MAGIC 0x4D435047u

/** ABI major version: part of the entry symbol's name (`mcpg_plugin_v1`). */
#define MCPG_ABI_MAJOR 1u
/** ABI minor version: grows when fields are appended to a struct. */
#define MCPG_ABI_MINOR 0u
/** `abi_version` field value: major in the high 16 bits, minor in the low 16 bits. */
#define MCPG_ABI_VERSION ((MCPG_ABI_MAJOR << 16) | MCPG_ABI_MINOR)

/** Size of the buffer `create` may write an error message into, NUL included. */
#define MCPG_ERROR_CAPACITY 1024u

/** The five plugin kinds. The config section a plugin is used in must match its kind. */
typedef enum mcpg_kind {
    MCPG_KIND_IDENTITY = 1,
    MCPG_KIND_POLICY = 2,
    MCPG_KIND_TRANSFORM = 3,
    MCPG_KIND_BACKEND = 4,
    MCPG_KIND_SINK = 5
} mcpg_kind;

/** Status passed to `complete` and returned by `create`. */
typedef enum mcpg_status {
    /** Success; the response is the op's result payload. */
    MCPG_STATUS_OK = 0,
    /** Failure; the response is `{"code": <int>, "message": "..."}`. */
    MCPG_STATUS_ERROR = 1
} mcpg_status;

/** Log levels for `mcpg_host.log`, in increasing severity. */
typedef enum mcpg_log_level {
    MCPG_LOG_TRACE = 0,
    MCPG_LOG_DEBUG = 1,
    MCPG_LOG_INFO = 2,
    MCPG_LOG_NOTICE = 3,
    MCPG_LOG_WARNING = 4,
    MCPG_LOG_ERROR = 5,
    MCPG_LOG_CRITICAL = 6
} mcpg_log_level;

/** Metric kinds for `mcpg_host.metric`. */
typedef enum mcpg_metric_kind {
    /** Add `value` to a counter. */
    MCPG_METRIC_COUNTER = 0,
    /** Set a gauge to `value`. */
    MCPG_METRIC_GAUGE = 1,
    /** Record `value` (seconds for durations) in a histogram. */
    MCPG_METRIC_HISTOGRAM = 2
} mcpg_metric_kind;

/**
 * A borrowed byte view. `ptr` may be NULL only when `len` is 0.
 * Valid only for the duration of the call that passes it.
 */
typedef struct mcpg_bytes {
    const uint8_t *ptr;
    size_t len;
} mcpg_bytes;

/**
 * Opaque per-call context owned by the kernel. Valid from the `handle` call
 * that receives it until `complete` returns for it; the plugin must not use it
 * afterwards (not even for `emit`).
 */
typedef struct mcpg_call mcpg_call;

/**
 * Answers one `handle` call. Must be called exactly once per call, from any
 * thread. `response` is borrowed: the kernel copies it before returning.
 * A second call for the same `call` is a plugin bug; the kernel ignores it and
 * logs an error.
 */
typedef void (*mcpg_complete_fn)(mcpg_call *call, int32_t status, mcpg_bytes response);

/**
 * Services the kernel offers a plugin. Passed to `create`; the pointer and the
 * table stay valid for the life of the process.
 */
typedef struct mcpg_host {
    /** sizeof(mcpg_host) as the kernel compiled it. */
    uint32_t struct_size;
    /** MCPG_ABI_VERSION of the kernel. */
    uint32_t abi_version;
    /** Opaque kernel pointer; pass it back to `log` and `metric`. */
    void *host_ctx;
    /**
     * Writes one log line through the kernel's logger, labelled with the
     * plugin instance. `message` is a short constant phrase (UTF-8);
     * `metadata_json` is a JSON object of string values or empty. Both borrowed.
     * Never pass secrets.
     */
    void (*log)(void *host_ctx, int32_t level, mcpg_bytes message, mcpg_bytes metadata_json);
    /**
     * Records one metric sample. `name` (UTF-8, e.g. "apikey_rejections") is
     * prefixed by the kernel with the plugin name; `labels_json` is a JSON
     * object of string values or empty. Both borrowed.
     */
    void (*metric)(void *host_ctx, int32_t kind, mcpg_bytes name, double value, mcpg_bytes labels_json);
    /**
     * Sends one JSON-RPC notification or request (UTF-8 JSON, borrowed) to the
     * client whose request caused `call`, e.g. `notifications/progress`.
     * Only valid while `call` is live (before `complete`). Returns 0 when the
     * message was queued, -1 when the call is no longer live or the client
     * cannot receive messages.
     */
    int32_t (*emit)(mcpg_call *call, mcpg_bytes message);
} mcpg_host;

/**
 * The plugin descriptor: a static object returned by `mcpg_plugin_v1`.
 * The kernel checks `magic`, then `abi_version`, then `struct_size`, before it
 * reads anything else.
 */
typedef struct mcpg_plugin {
    /** MCPG_PLUGIN_MAGIC. */
    uint32_t magic;
    /** MCPG_ABI_VERSION the plugin was built against. */
    uint32_t abi_version;
    /** sizeof(mcpg_plugin) as the plugin compiled it. */
    uint32_t struct_size;
    /** One of mcpg_kind. */
    uint32_t kind;
    /** Plugin name as config refers to it (NUL-terminated, static, [a-z0-9_-]+). */
    const char *name;
    /** Plugin version (NUL-terminated, static, semver). */
    const char *version;
    /**
     * JSON Schema (2020-12) of the plugin's `config` block (NUL-terminated,
     * static). The kernel validates a config against it before `create`.
     */
    const char *config_schema;
    /**
     * Creates an instance from `config_json` (borrowed; `{}` when the config
     * block is absent). On success stores an opaque instance pointer in
     * `*instance` and returns MCPG_STATUS_OK. On failure returns
     * MCPG_STATUS_ERROR and writes a NUL-terminated UTF-8 message of at most
     * MCPG_ERROR_CAPACITY bytes into `error` (kernel-owned buffer).
     * `host` stays valid for the life of the process.
     */
    int32_t (*create)(const mcpg_host *host, mcpg_bytes config_json, void **instance, char *error);
    /** Releases an instance. Called once, after every call on it has completed. */
    void (*destroy)(void *instance);
    /**
     * Starts one operation. `op` names it (UTF-8, e.g. "authenticate"),
     * `request` is its JSON payload; both borrowed for this call only. The
     * plugin answers through `complete(call, status, response)` exactly once.
     * Must not block.
     */
    void (*handle)(void *instance, mcpg_bytes op, mcpg_bytes request, mcpg_call *call, mcpg_complete_fn complete);
    /**
     * Optional (may be NULL): the client cancelled `call`. The plugin should
     * stop work; it must still call `complete` exactly once (any status).
     */
    void (*cancel)(void *instance, mcpg_call *call);
} mcpg_plugin;

/** The one exported symbol of a plugin. Returns a pointer to a static descriptor. */
typedef const mcpg_plugin *(*mcpg_plugin_entry_fn)(void);

/** Name of the entry symbol, for dlsym. */
#define MCPG_PLUGIN_ENTRY_SYMBOL "mcpg_plugin_v1"

#ifdef __cplusplus
}
#endif

#endif /* MCPG_PLUGIN_H */
