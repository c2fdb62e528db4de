"""Tahoe's HTTP storage protocol over pinned HTTPS: client, server, TLS, veil's batch routes."""
