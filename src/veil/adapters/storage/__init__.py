"""Share backends: disk (Tahoe's storage layout), memory, and an in-process client."""
