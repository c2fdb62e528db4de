"""Check, verify and repair files and directories; deep traversal with totals.

``check`` (``api``) is the one entry point for one object; ``deep_check``
(``deep``) walks a tree. Results are shaped as Tahoe-LAFS 1.20's
(``results``), so scripts written for Tahoe read them.
"""

from veil.services.checker.api import GridSession, check
from veil.services.checker.results import CheckReport, CheckResults

__all__ = ["CheckReport", "CheckResults", "GridSession", "check"]
