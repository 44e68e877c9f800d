import PluginKit

// Placeholder until the `oidc` plugin lands.
struct OIDC {}
