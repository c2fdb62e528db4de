"""The JSON of a finished (or running) ``start-deep-check`` operation, as Tahoe's.

Tahoe 1.20's ``DeepCheckResultsRenderer`` and ``DeepCheckAndRepairResultsRenderer``
(web/check_results.py) sum the per-object results of a deep check into counts
of objects checked, healthy and unhealthy (before and after repair), repairs
attempted and their outcome, corrupt shares, and the unhealthy files with
their own check results. Here the sums are made from the per-object JSON that
``veil.services.checker`` already gives (``json_check_results`` and
``json_check_and_repair_results``), so both always agree.
"""

from __future__ import annotations

from typing import Any

Checked = list[tuple[list[str], dict[str, Any]]]


def _healthy(results: dict[str, Any]) -> bool:
    return bool(results.get("results", {}).get("healthy"))


def _corrupt(results: dict[str, Any]) -> list[Any]:
    return list(results.get("results", {}).get("list-corrupt-shares", []))


def deep_check_json(kind: str, finished: bool, root_si: str, checked: Checked) -> dict[str, Any]:
    out: dict[str, Any] = {"finished": finished, "root-storage-index": root_si}
    out["count-objects-checked"] = len(checked)
    if kind == "deep-check":
        unhealthy = [(path, r) for path, r in checked if not _healthy(r)]
        corrupt = [share for _, r in checked for share in _corrupt(r)]
        out["count-objects-healthy"] = len(checked) - len(unhealthy)
        out["count-objects-unhealthy"] = len(unhealthy)
        out["count-corrupt-shares"] = len(corrupt)
        out["list-corrupt-shares"] = corrupt
        out["list-unhealthy-files"] = [[path, r] for path, r in unhealthy]
        return out
    pre = [(path, r.get("pre-repair-results", r)) for path, r in checked]
    post: list[dict[str, Any]] = [
        r.get("post-repair-results") or r.get("pre-repair-results") or r for _, r in checked
    ]
    attempted = [r for _, r in checked if r.get("repair-attempted")]
    pre_unhealthy = [(path, r) for path, r in pre if not _healthy(r)]
    pre_corrupt = [share for _, r in pre for share in _corrupt(r)]
    out["count-objects-healthy-pre-repair"] = len(pre) - len(pre_unhealthy)
    out["count-objects-unhealthy-pre-repair"] = len(pre_unhealthy)
    healthy_after = [r for r in post if _healthy(r)]
    out["count-objects-healthy-post-repair"] = len(healthy_after)
    out["count-objects-unhealthy-post-repair"] = len(post) - len(healthy_after)
    out["count-repairs-attempted"] = len(attempted)
    out["count-repairs-successful"] = sum(1 for r in attempted if r.get("repair-successful"))
    out["count-repairs-unsuccessful"] = sum(1 for r in attempted if not r.get("repair-successful"))
    out["count-corrupt-shares-pre-repair"] = len(pre_corrupt)
    out["count-corrupt-shares-post-repair"] = len(pre_corrupt)  # Tahoe's own (sic)
    out["list-corrupt-shares"] = pre_corrupt
    out["list-remaining-corrupt-shares"] = [share for r in post for share in _corrupt(r)]
    out["list-unhealthy-files"] = [[path, r] for path, r in pre_unhealthy]
    return out
