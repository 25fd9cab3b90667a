"""Access control: scopes and roles, API keys and subject status tokens, principals, rate
limits and the per-key caps on work. Below the application layer; knows no transport."""
