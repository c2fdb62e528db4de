"""Immutable (CHK) files from the client side: upload, download, placement, small files."""
