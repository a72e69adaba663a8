"""`ecr-warden report`'s output: the admin function's report data (ecr_warden.actions.report, JSON) as an aligned
terminal table, a Markdown document for a security review (title, date, account and region, summary, one table per
section), CSV (one row per repository, for a spreadsheet) or JSON. `merge` joins the answers of the invocations a
large registry takes (each reports up to `limit` repositories and answers a next_token)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from ecr_warden.actions.report import summarize

FORMATS = ("table", "markdown", "csv", "json")
CSV_COLUMNS = (
    "repository", "rule", "profile", "images", "unrecorded", "by_status", "blocked", "blocked_digests", "exempt",
    "exempt_digests", "drift_changes", "drift_reports", "expiring_exemptions", "bytes", "gb", "monthly_cost_usd",
    "lifecycle_expiring", "lifecycle",
)  # fmt: skip


def merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One report from the results of consecutive invocations (the first one's header, every repository)."""
    if not parts:
        raise ValueError("no report to merge")
    first = parts[0]
    sections = [section for part in parts for section in part.get("repositories", [])]
    return {
        **{k: v for k, v in first.items() if k not in ("repositories", "summary", "next_token")},
        "repositories": sections,
        "summary": summarize(sections, float(first["price_per_gb_month"])),
    }


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(report, indent=2, default=str) + "\n"
    if fmt == "csv":
        return _csv(report)
    if fmt == "markdown":
        return _markdown(report)
    return _table(report)


def _drift(section: dict[str, Any]) -> str:
    drift = section.get("drift")
    if drift is None:
        return "no profile"
    found = len(drift["changes"]) + len(drift["reports"])
    return f"{found} gap(s)" if found else "none"


def _cost(value: float) -> str:
    return f"${value:,.2f}"


def _short(digest: str) -> str:
    return digest[:19] + "…" if len(digest) > 20 else digest


def _lifecycle(section: dict[str, Any]) -> str:
    lifecycle = section["lifecycle"]
    return (
        str(lifecycle["message"])
        if not lifecycle["available"] or not lifecycle["expiring"]
        else (f"{lifecycle['expiring']} would expire")
    )


def _overview_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["repository", "images", "blocked", "exempt", "unrecorded", "drift", "exp. exemptions", "size GB",
              "cost/month", "lifecycle"]  # fmt: skip
    rows = [
        [s["repository"], str(s["images"]["total"]), str(len(s["blocked"])), str(len(s["exempt"])),
         str(s["images"]["unrecorded"]), _drift(s), str(len(s["expiring_exemptions"])), f"{s['storage']['gb']:.3f}",
         _cost(s["storage"]["monthly_cost_usd"]), _lifecycle(s)]
        for s in report["repositories"]
    ]  # fmt: skip
    return header, rows


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    return lines


def _price(value: float) -> str:
    return f"${value:.2f}" if round(value, 2) == value else f"${value:g}"


def _cost_line(report: dict[str, Any]) -> str:
    summary = report["summary"]
    return (
        f"Estimated storage cost: {_cost(summary['monthly_cost_usd'])} per month for {summary['bytes'] / 1024**3:.3f} "
        f"GB at {_price(report['price_per_gb_month'])} per GB-month"
    )


def _table(report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        f"ecr-warden report  {report['generated_at']}  account {report['account'] or '?'}  region {report['region']}",
        f"{summary['repositories']} repositories, {summary['images']} images, {summary['blocked']} blocked, "
        f"{summary['exempt']} exempt, {summary['drifted']} with settings drift, {summary['expiring_exemptions']} "
        f"exemption(s) expiring within {report['expiring_within_days']} days",
        f"{_cost_line(report)} ({report['pricing']})",
        "",
    ]
    lines += _aligned(*_overview_rows(report))
    detail = [
        [s["repository"], row["status"], _short(row["digest"]), ",".join(row["tags"]) or "-", row["since"],
         row["reason"]]
        for s in report["repositories"] for row in s["blocked"] + s["exempt"]
    ]  # fmt: skip
    if detail:
        lines += ["", *_aligned(["repository", "status", "digest", "tags", "since", "reason"], detail)]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return text or " "


def _md_table(header: list[str], rows: list[list[Any]], empty: str) -> list[str]:
    if not rows:
        return [f"_{empty}_", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _markdown(report: dict[str, Any]) -> str:
    summary, sections = report["summary"], report["repositories"]
    lines = [
        "# ECR security report",
        "",
        f"- **Date:** {report['generated_at']}",
        f"- **Account / region:** {report['account'] or 'unknown'} / {report['region']}",
        "- **Generated by:** ecr-warden report (read-only)",
        "",
        "## Summary",
        "",
    ]
    lines += _md_table(
        ["repositories", "images", "blocked", "exempt", "with settings drift",
         f"exemptions expiring within {report['expiring_within_days']} days", "lifecycle would expire",
         "previews unavailable"],
        [[summary["repositories"], summary["images"], summary["blocked"], summary["exempt"], summary["drifted"],
          summary["expiring_exemptions"], summary["lifecycle_expiring"], summary["previews_unavailable"]]],
        "nothing reported",
    )  # fmt: skip
    lines += [f"**{_cost_line(report)}.**", "", "## Repositories", ""]
    header, rows = _overview_rows(report)
    lines += _md_table(header, rows, "no managed repository")
    lines += ["## Settings drift", ""]
    drift = [
        [s["repository"], s["profile"], kind, text]
        for s in sections if s["drift"]
        for kind, texts in (("change", s["drift"]["changes"]), ("report", s["drift"]["reports"])) for text in texts
    ]  # fmt: skip
    lines += _md_table(["repository", "profile", "kind", "gap"], drift, "no drift: each repository matches its profile")
    for title, key, empty in (
        ("Quarantined images", "blocked", "no quarantined image"),
        ("Exempt images", "exempt", "no exempt image"),
    ):
        rows = [
            [s["repository"], f"`{row['digest']}`", ", ".join(row["tags"]) or "-", row["status"], row["since"],
             row["reason"]]
            for s in sections for row in s[key]
        ]  # fmt: skip
        lines += [f"## {title}", ""]
        lines += _md_table(["repository", "digest", "recorded tags", "status", "since", "reason"], rows, empty)
    expiring = [
        [s["repository"], e["cve"], f"`{e['digest']}`" if e.get("digest") else "all images", e["expires"],
         e["approver"], e["reason"]]
        for s in sections for e in s["expiring_exemptions"]
    ]  # fmt: skip
    lines += [f"## Exemptions expiring within {report['expiring_within_days']} days", ""]
    lines += _md_table(["repository", "CVE", "scope", "expires", "approver", "reason"], expiring, "none")
    lines += ["## Storage and estimated cost", ""]
    storage = [[s["repository"], s["images"]["total"], f"{s['storage']['gb']:.3f}",
                _cost(s["storage"]["monthly_cost_usd"])] for s in sections]  # fmt: skip
    lines += _md_table(["repository", "images", "GB", "per month"], storage, "no repository")
    lines += [f"_{report['pricing']}._", "", "## Lifecycle preview", ""]
    lifecycle = [[s["repository"], s["lifecycle"]["expiring"] if s["lifecycle"]["available"] else "-",
                  s["lifecycle"]["message"]] for s in sections]  # fmt: skip
    lines += _md_table(["repository", "would expire", "preview"], lifecycle, "no repository")
    return "\n".join(lines).rstrip() + "\n"


def _safe(value: Any) -> Any:
    """A cell a spreadsheet shows as text, never runs as a formula (a reason is free text)."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in report["repositories"]:
        drift = s["drift"] or {"changes": [], "reports": []}
        writer.writerow([_safe(cell) for cell in [
            s["repository"], s["rule"] or "", s["profile"] or "", s["images"]["total"], s["images"]["unrecorded"],
            ";".join(f"{k}={v}" for k, v in s["images"]["by_status"].items()), len(s["blocked"]),
            ";".join(r["digest"] for r in s["blocked"]), len(s["exempt"]), ";".join(r["digest"] for r in s["exempt"]),
            "; ".join(drift["changes"]), "; ".join(drift["reports"]),
            ";".join(f"{e['cve']}@{e['expires']}" for e in s["expiring_exemptions"]), s["storage"]["bytes"],
            s["storage"]["gb"], s["storage"]["monthly_cost_usd"], s["lifecycle"]["expiring"], s["lifecycle"]["message"],
        ]])  # fmt: skip
    return out.getvalue()
