"""Mutable (SDMF and MDMF) files from the client side: server map, publish, retries."""
