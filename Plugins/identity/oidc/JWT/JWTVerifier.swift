// JWT verification for the `oidc` identity plugin (placeholder until it lands).
