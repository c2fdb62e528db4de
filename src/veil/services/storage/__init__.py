"""The storage server core: shares, mutable slots, leases, space, advisories, batches."""
