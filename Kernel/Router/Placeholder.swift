// Placeholder until the Router module lands.
