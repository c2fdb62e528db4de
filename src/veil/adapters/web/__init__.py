"""The web gateway: the welcome page and (later) Tahoe's web API."""
