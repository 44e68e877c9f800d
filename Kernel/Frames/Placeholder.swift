// Placeholder until the Frames module lands.
