"""Severities as AWS scanners name them, and their order."""

from __future__ import annotations

SEVERITIES: tuple[str, ...] = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED", "UNDEFINED")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(reversed(SEVERITIES[:5]), start=1)}


def severity_rank(severity: str) -> int:
    """CRITICAL=5 … INFORMATIONAL=1; anything unranked (UNTRIAGED, UNDEFINED) is 0."""
    return SEVERITY_RANK.get(severity.upper(), 0)
