// Placeholder until the Transport module lands.
