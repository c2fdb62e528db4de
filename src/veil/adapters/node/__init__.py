"""Node directories and running nodes: config, secrets, aliases, introducer, backup db."""
