// Placeholder until the Loader module lands.
