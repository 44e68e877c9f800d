/*
 * raw_plugin.c: a plugin written straight against mcpg_plugin.h, in C, with no runtime behind it.
 * `handle` echoes the request back through `complete` on the calling thread, so timing it through
 * abi_bench measures the boundary alone: two indirect calls and the host's copy of the response.
 *
 * Build: gcc -O2 -shared -fPIC -fvisibility=hidden -I../../PluginABI/include -o raw_plugin.so raw_plugin.c
 */
#include <stdlib.h>
#include <string.h>

#include "mcpg_plugin.h"

/* Every instance is the same: the plugin keeps no state. */
static int raw_instance;

static int32_t raw_create(const mcpg_host *host, mcpg_bytes config_json, void **instance, char *error) {
    (void)host;
    (void)config_json;
    (void)error;
    *instance = &raw_instance;
    return MCPG_STATUS_OK;
}

static void raw_destroy(void *instance) { (void)instance; }

/* The response is the request itself: borrowed from the caller, handed back borrowed, as the header allows. */
static void raw_handle(void *instance, mcpg_bytes op, mcpg_bytes request, mcpg_call *call, mcpg_complete_fn complete) {
    (void)instance;
    (void)op;
    complete(call, MCPG_STATUS_OK, request);
}

static const mcpg_plugin raw_descriptor = {
    .magic = MCPG_PLUGIN_MAGIC,
    .abi_version = MCPG_ABI_VERSION,
    .struct_size = sizeof(mcpg_plugin),
    .kind = MCPG_KIND_BACKEND,
    .name = "raw_echo",
    .version = "1.0.0",
    .config_schema = "{\"type\":\"object\"}",
    .create = raw_create,
    .destroy = raw_destroy,
    .handle = raw_handle,
    .cancel = NULL,
};

/* The one exported symbol. */
__attribute__((visibility("default"))) const mcpg_plugin *mcpg_plugin_v1(void) { return &raw_descriptor; }
