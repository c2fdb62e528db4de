"""Delegated care: renewal caps, the verify-cap list on the grid, and ``renew``.

A renewal cap (``cap``) lets its holder keep a tree alive without being able
to read or change it: ``listing`` keeps the list of the tree's verify caps on
the grid, ``renew`` renews leases, checks and repairs from it.
"""
