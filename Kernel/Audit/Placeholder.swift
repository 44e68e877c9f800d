// Placeholder until the Audit module lands.
