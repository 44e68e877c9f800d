// The PluginABI target is the header; this file only pins the layout the header promises.
#include "mcpg_plugin.h"

_Static_assert(sizeof(mcpg_bytes) == 2 * sizeof(void *), "mcpg_bytes is {ptr, len}");
_Static_assert(offsetof(mcpg_plugin, magic) == 0, "magic comes first");
_Static_assert(offsetof(mcpg_plugin, abi_version) == 4, "abi_version follows magic");
_Static_assert(offsetof(mcpg_plugin, struct_size) == 8, "struct_size follows abi_version");
