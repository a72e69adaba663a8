"""What a person reads: Block Kit for Slack, a readable subject and a versioned JSON document for SNS. Pure."""

from __future__ import annotations

import re
import shlex
from typing import Any

from ecr_warden.contracts.decision import Action, DecisionDetail
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.severity import SEVERITIES, severity_rank

SNS_SCHEMA_VERSION = "1.0"
MAX_BLOCKS = 50  # Slack's limit per message
MAX_TEXT = 3000  # Slack's limit per section text
MAX_HEADER = 150  # Slack's limit for a header's plain text
MAX_FINDINGS_SHOWN = 8
MAX_SUBJECT = 99  # SNS: fewer than 100 characters

_HEADLINES: dict[Action, tuple[str, str]] = {
    Action.QUARANTINED: (":rotating_light:", "Quarantined"),
    Action.ARCHIVED: (":rotating_light:", "Archived"),
    Action.TAGGED: (":warning:", "Flagged"),
    Action.RETAG_BLOCKED: (":no_entry:", "Re-tag blocked on quarantined image"),
    Action.NOW_COMPLIANT: (":white_check_mark:", "Now compliant (still quarantined)"),
    Action.RELEASED: (":unlock:", "Released"),
    Action.RELEASE_INCOMPLETE: (":warning:", "Released, tags not all restored"),
    Action.TAG_REUSED: (":warning:", "Tag of a quarantined image reused"),
    Action.SCAN_FAILED: (":grey_question:", "Scan failed"),
    Action.UPDATED: (":heavy_plus_sign:", "Findings changed"),
    Action.WOULD_QUARANTINE: (":mag:", "Audit: would quarantine"),
    Action.WOULD_ARCHIVE: (":mag:", "Audit: would archive"),
    Action.WOULD_TAG: (":mag:", "Audit: would flag"),
    Action.PASSED: (":white_check_mark:", "Passed"),
    Action.KEPT_RELEASED: (":information_source:", "Kept released"),
    Action.SKIPPED: (":information_source:", "Skipped"),
    Action.WOULD_REMOVE_TAG: (":mag:", "Audit: would remove tag"),
}
_DID: dict[Action, str] = {
    Action.QUARANTINED: "removed the deployable tags and kept the image under `{quarantine_tag}`",
    Action.ARCHIVED: "moved the image to the ARCHIVE storage class (pulls fail until it is restored)",
    Action.TAGGED: "added the marker tag `{marker_tag}`; existing tags were left alone",
    Action.RETAG_BLOCKED: "removed the new tag again; the image stays quarantined",
    Action.NOW_COMPLIANT: "changed nothing: the image no longer breaks the policy but stays quarantined until an "
    "admin releases it",
    Action.RELEASED: "restored the original tags",
    Action.SCAN_FAILED: "changed nothing (the policy allows unscanned images); check the scan",
    Action.UPDATED: "changed nothing: the image was already handled; its findings changed",
    Action.WOULD_QUARANTINE: "changed nothing (audit mode); in enforce mode it would quarantine the image",
    Action.WOULD_ARCHIVE: "changed nothing (audit mode); in enforce mode it would archive the image",
    Action.WOULD_TAG: "changed nothing (audit mode); in enforce mode it would add a marker tag",
}


def _did(detail: DecisionDetail) -> str:
    short = {tag: (digest or "another image")[:19] for tag, digest in detail.not_restored.items()}
    if detail.action is Action.RELEASE_INCOMPLETE:
        left_out = ", ".join(f"`{tag}` (now on `{digest}…`)" for tag, digest in short.items())
        return (
            f"restored {', '.join(f'`{t}`' for t in detail.tags) or 'no tag'} and left out {left_out}, which now "
            "point at other images. ecr-warden no longer blocks this image: deploy it by digest, or push a new tag "
            "onto it"
        )
    if detail.action is Action.TAG_REUSED:
        tags = ", ".join(f"`{t}`" for t in detail.tags)
        return (
            f"changed nothing: {tags}, recorded for this quarantined image, now points at "
            f"`{(detail.tag_now_on or '?')[:19]}…`. That image is judged on its own scan; check that it is the fix "
            "you expect"
        )
    return _DID.get(detail.action, "recorded the decision").format(
        quarantine_tag=detail.quarantine_tag or "-", marker_tag=detail.marker_tag or "-"
    )


def highest_severity(detail: DecisionDetail) -> str:
    reported = [s for s in SEVERITIES if detail.severity_counts.get(s)]
    reported += [f.severity for f in detail.top_findings]
    return max(reported, key=severity_rank, default="NONE")


def image_name(detail: DecisionDetail) -> str:
    tag = detail.tags[0] if detail.tags else None
    return f"{detail.repository}:{tag}" if tag else f"{detail.repository}@{detail.digest[:19]}"


def console_url(detail: DecisionDetail) -> str:
    return (
        f"https://{detail.region}.console.aws.amazon.com/ecr/repositories/private/{detail.account}/"
        f"{detail.repository}/_/image/{detail.digest}/details?region={detail.region}"
    )


def commands(detail: DecisionDetail) -> dict[str, str]:
    """The exact ecr-warden commands an admin runs next (values quoted for a POSIX shell)."""
    repo, digest = shlex.quote(detail.repository), shlex.quote(detail.digest)
    result = {}
    if detail.status in ("QUARANTINED", "ARCHIVED", "TAGGED", "AUDITED"):
        result["release"] = f"ecr-warden release --repository {repo} --digest {digest} --reason '…'"
    if detail.top_findings:
        cve = shlex.quote(detail.top_findings[0].id)
        result["exempt"] = (
            f"ecr-warden exempt --cve {cve} --repository {repo} --digest {digest} "
            "--expires YYYY-MM-DD --reason '…' --approver you@example.com"
        )
    return result


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _counts_line(detail: DecisionDetail) -> str:
    parts = [f"{s} {detail.severity_counts[s]}" for s in SEVERITIES if detail.severity_counts.get(s)]
    return " · ".join(parts) or "no findings"


def _finding_line(f: Finding) -> str:
    name = f"<{f.url}|{f.id}>" if f.url else f.id
    parts = [f"*{name}* {f.severity}"]
    if f.package:
        version = f.installed_version or "?"
        parts.append(f"`{f.package}` {version} → {f.fixed_version or 'no fix yet'}")
    if f.cvss is not None:
        parts.append(f"CVSS {f.cvss:g}")
    if f.exploit_available:
        parts.append(":boom: exploit available")
    return " · ".join(parts)


def headline(detail: DecisionDetail, follow_up_count: int = 0) -> str:
    _emoji, words = _HEADLINES.get(detail.action, ("", detail.action.value))
    suffix = f" ({follow_up_count} updates)" if follow_up_count else ""
    return f"{words}: {image_name(detail)}{suffix}"


def slack_message(detail: DecisionDetail, follow_ups: list[DecisionDetail] | None = None) -> dict[str, Any]:
    """Block Kit message plus plain-text fallback, kept within Slack's limits."""
    follow_ups = follow_ups or []
    emoji, _ = _HEADLINES.get(detail.action, ("", ""))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "emoji": True,
                "text": _truncate(f"{emoji} {headline(detail, len(follow_ups))}".strip(), MAX_HEADER),
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Repository*\n`{detail.repository}`"},
                {"type": "mrkdwn", "text": f"*Digest*\n`{detail.digest[:19]}…`"},
                {"type": "mrkdwn", "text": f"*Account / region*\n{detail.account} / {detail.region}"},
                {"type": "mrkdwn", "text": f"*Tags*\n{', '.join(detail.tags) or '(none)'}"},
                {"type": "mrkdwn", "text": f"*Severity counts*\n{_counts_line(detail)}"},
                {"type": "mrkdwn", "text": f"*Rule / mode*\n{detail.rule or '-'} / {detail.environment} {detail.mode}"},
            ],
        },
    ]
    if detail.top_findings:
        lines: list[str] = []
        budget = MAX_TEXT - 80  # room for the "and N more" line
        for finding in detail.top_findings[:MAX_FINDINGS_SHOWN]:
            line = _truncate(_finding_line(finding), 600)
            if sum(len(x) + 1 for x in lines) + len(line) > budget:
                break
            lines.append(line)
        more = max(detail.findings_total, len(detail.top_findings)) - len(lines)
        if more > 0:
            lines.append(f"_and {more} more finding(s): see the console_")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    did = _did(detail)
    reasons = "\n".join(f"• {r}" for r in detail.reasons)
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _truncate(f"*What ecr-warden did:* it {did}.\n{reasons}", MAX_TEXT)},
        }
    )
    if follow_ups:
        lines = [f"• {u.time:%H:%M:%S} {u.action.value}: {'; '.join(u.reasons)[:200]}" for u in follow_ups]
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _truncate(
                        f"*Updates in the last window ({len(follow_ups)}):*\n" + "\n".join(lines), MAX_TEXT
                    ),
                },
            }
        )
    next_steps = commands(detail)
    if next_steps:
        text = "\n".join(f"*{name}:* ```{command}```" for name, command in next_steps.items())
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text, MAX_TEXT)}})
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open in the ECR console"},
                    "url": console_url(detail),
                }
            ],
        }
    )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _truncate(
                        f"ecr-warden · decision {detail.decision_id} · trigger {detail.trigger} · "
                        f"{detail.time:%Y-%m-%d %H:%M:%S} UTC",
                        MAX_TEXT,
                    ),
                }
            ],
        }
    )
    return {"text": plain_text(detail, follow_ups), "blocks": blocks[:MAX_BLOCKS]}


def plain_text(detail: DecisionDetail, follow_ups: list[DecisionDetail] | None = None) -> str:
    """Fallback for clients that don't render blocks (also the notification preview)."""
    top = ", ".join(f.id for f in detail.top_findings[:3])
    text = f"{headline(detail, len(follow_ups or []))} — {_counts_line(detail)}"
    if top:
        text += f" — {top}"
    return _truncate(text, MAX_TEXT)


def sns_subject(detail: DecisionDetail, follow_up_count: int = 0) -> str:
    """ASCII, one line, fewer than 100 characters: what e-mail subscribers see first."""
    counts = ", ".join(f"{detail.severity_counts[s]} {s}" for s in SEVERITIES[:2] if detail.severity_counts.get(s))
    subject = f"[ecr-warden] {headline(detail, follow_up_count)}" + (f" ({counts})" if counts else "")
    ascii_only = re.sub(r"[^\x20-\x7e]", "", subject)
    return ascii_only if len(ascii_only) <= MAX_SUBJECT else ascii_only[: MAX_SUBJECT - 3] + "..."


def sns_document(detail: DecisionDetail, follow_ups: list[DecisionDetail] | None = None) -> dict[str, Any]:
    """The machine-readable message: the decision, plus what the Slack message adds for people."""
    return {
        "schema_version": SNS_SCHEMA_VERSION,
        "kind": "follow_up" if follow_ups else "decision",
        "summary": plain_text(detail, follow_ups),
        "highest_severity": highest_severity(detail),
        "console_url": console_url(detail),
        "commands": commands(detail),
        "decision": detail.model_dump(mode="json", exclude_none=True),
        # summaries only: a flood of full decisions would outgrow SNS's 256 KB
        "updates": [
            {"time": u.time.isoformat(), "action": u.action.value, "reasons": u.reasons[:3]} for u in follow_ups or []
        ],
    }


def sns_attributes(detail: DecisionDetail) -> dict[str, dict[str, str]]:
    """Message attributes subscribers filter on."""
    values = {
        "severity": highest_severity(detail),
        "action": detail.action.value,
        "repository": detail.repository,
        "account": detail.account,
        "environment": detail.environment,
    }
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}
