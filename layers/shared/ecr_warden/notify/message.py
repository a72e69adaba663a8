"""What a person reads: Block Kit for Slack, a readable subject and a versioned JSON document for SNS. Pure."""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit

from ecr_warden.contracts.decision import Action, DecisionDetail
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import Scope
from ecr_warden.domain.severity import SEVERITIES, severity_rank

SNS_SCHEMA_VERSION = "1.0"
MAX_BLOCKS = 50  # Slack's limit per message
MAX_TEXT = 3000  # Slack's limit per section text
MAX_HEADER = 150  # Slack's limit for a header's plain text
MAX_FINDINGS_SHOWN = 8
MAX_SUBJECT = 99  # SNS: fewer than 100 characters
# Advisory sites a finding's id may link to: host -> path prefix. Any other URL in an event is not a link.
ADVISORY_HOSTS = {
    "nvd.nist.gov": "/",
    "cve.mitre.org": "/",
    "www.cve.org": "/",
    "github.com": "/advisories/",
    "access.redhat.com": "/",
    "ubuntu.com": "/security/",
    "security-tracker.debian.org": "/",
    "alas.aws.amazon.com": "/",
    "explore.alas.aws.amazon.com": "/",
    "osv.dev": "/",
    "avd.aquasec.com": "/",
    "security.alpinelinux.org": "/",
    "www.suse.com": "/security/",
}
_URL_CHARACTERS = re.compile(r"https://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")

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
    Action.UNSCANNED: (":grey_question:", "No scan result"),
    Action.FINDINGS_MISSING: (":warning:", "Scanner counts without listed findings"),
    Action.SETTINGS_ENFORCED: (":wrench:", "Repository settings enforced"),
    Action.SETTINGS_REPORTED: (":warning:", "Repository settings not compliant"),
    Action.WOULD_ENFORCE_SETTINGS: (":mag:", "Audit: would enforce repository settings"),
}
_DID: dict[Action, str] = {
    Action.QUARANTINED: "removed the deployable tags and kept the image under `{quarantine_tag}`; it can still be "
    "pulled by digest or by that tag (for a hard block use block_method: archive, or check at deploy time)",
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
    Action.UNSCANNED: "changed nothing (the policy allows unscanned images); find out why it was not scanned",
    Action.FINDINGS_MISSING: "changed nothing (the policy says alert): the scanner counted findings at or above the "
    "thresholds that it still does not list; check the image in Inspector",
    Action.SETTINGS_ENFORCED: "changed the repository's settings to the policy's",
    Action.SETTINGS_REPORTED: "changed nothing: these gaps are left as they are (see why below)",
    Action.WOULD_ENFORCE_SETTINGS: "changed nothing (audit mode); in enforce mode it would change these settings",
}


def _did(detail: DecisionDetail) -> str:
    """What ecr-warden did, in mrkdwn: every value from the event is escaped."""
    esc = mrkdwn_escape
    short = {esc(tag): esc((digest or "another image")[:19]) for tag, digest in detail.not_restored.items()}
    tags = [esc(t) for t in detail.tags]
    if detail.action is Action.RELEASE_INCOMPLETE:
        left_out = ", ".join(f"`{tag}` (now on `{digest}…`)" for tag, digest in short.items())
        return (
            f"restored {', '.join(f'`{t}`' for t in tags) or 'no tag'} and left out {left_out}, which now "
            "point at other images. ecr-warden no longer blocks this image: deploy it by digest, or push a new tag "
            "onto it"
        )
    if detail.action is Action.TAG_REUSED:
        return (
            f"changed nothing: {', '.join(f'`{t}`' for t in tags)}, recorded for this quarantined image, now points "
            f"at `{esc((detail.tag_now_on or '?')[:19])}…`. That image is judged on its own scan; check that it is "
            "the fix you expect"
        )
    return _DID.get(detail.action, "recorded the decision").format(
        quarantine_tag=esc(detail.quarantine_tag or "-"), marker_tag=esc(detail.marker_tag or "-")
    )


def highest_severity(detail: DecisionDetail) -> str:
    reported = [s for s in SEVERITIES if detail.severity_counts.get(s)]
    reported += [f.severity for f in detail.top_findings]
    return max(reported, key=severity_rank, default="NONE")


def unrated(detail: DecisionDetail) -> bool:
    """A block no finding explains (no scan result in time, or a failed scan): its severity is unknown, not low."""
    return detail.verdict == "BLOCK" and highest_severity(detail) == "NONE"


def image_name(detail: DecisionDetail) -> str:
    tag = detail.tags[0] if detail.tags else None
    if detail.digest is None:
        return detail.repository
    return f"{detail.repository}:{tag}" if tag else f"{detail.repository}@{detail.digest[:19]}"


def console_url(detail: DecisionDetail) -> str:
    if detail.digest is None:  # a repository decision: the repository's page
        return (
            f"https://{detail.region}.console.aws.amazon.com/ecr/repositories/private/{detail.account}/"
            f"{detail.repository}?region={detail.region}"
        )
    return (
        f"https://{detail.region}.console.aws.amazon.com/ecr/repositories/private/{detail.account}/"
        f"{detail.repository}/_/image/{detail.digest}/details?region={detail.region}"
    )


def commands(detail: DecisionDetail, home: Scope | None = None) -> dict[str, str]:
    """The exact ecr-warden commands an admin runs next (values quoted for a POSIX shell). `home`: the
    deployment's own account and region (the notifier's); an image elsewhere (organization mode) is named with
    --account and --registry-region, so the command reaches the deployment and acts in the image's registry."""
    if detail.digest is None:
        return {}
    repo, digest = shlex.quote(detail.repository), shlex.quote(detail.digest)
    # where the decision was made: a command copied from the message acts on that deployment, nowhere else
    deployed = home.region if home else detail.region
    where = f"--environment {shlex.quote(detail.environment)} --region {shlex.quote(deployed)}"
    if home is not None and (detail.account, detail.region) != (home.account, home.region):
        where += f" --account {shlex.quote(detail.account)} --registry-region {shlex.quote(detail.region)}"
    result = {}
    if detail.status in ("QUARANTINED", "ARCHIVED", "TAGGED", "AUDITED"):
        result["release"] = f"ecr-warden release {where} --repository {repo} --digest {digest} --reason '…'"
    if detail.top_findings:
        cve = shlex.quote(detail.top_findings[0].id)
        result["exempt"] = (
            f"ecr-warden exempt add {where} --cve {cve} --repository {repo} --digest {digest} "
            "--expires YYYY-MM-DD --reason '…' --approver you@example.com"
        )
    return result


def mrkdwn_escape(text: object) -> str:
    """Event text in Slack mrkdwn: `&`, `<` and `>` escaped, so it can't mention, link or break formatting out."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def advisory_url(url: str | None) -> str | None:
    """The URL if it points at a known advisory site over https, else None (the id is shown as plain text)."""
    if not url or not _URL_CHARACTERS.fullmatch(url):
        return None
    parts = urlsplit(url)
    prefix = ADVISORY_HOSTS.get(parts.netloc)
    if parts.scheme != "https" or prefix is None or not parts.path.startswith(prefix):
        return None
    return url


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _counts_line(detail: DecisionDetail) -> str:
    if unrated(detail):
        return "severity unknown: no listed finding explains the block"
    parts = [f"{s} {detail.severity_counts[s]}" for s in SEVERITIES if detail.severity_counts.get(s)]
    return " · ".join(parts) or "no findings"


def _finding_line(f: Finding) -> str:
    url = advisory_url(f.url)
    name = f"<{mrkdwn_escape(url)}|{mrkdwn_escape(f.id)}>" if url else mrkdwn_escape(f.id)
    parts = [f"*{name}* {mrkdwn_escape(f.severity)}"]
    if f.package:
        version = mrkdwn_escape(f.installed_version or "?")
        fixed = mrkdwn_escape(f.fixed_version or "no fix yet")
        parts.append(f"`{mrkdwn_escape(f.package)}` {version} → {fixed}")
    if f.cvss is not None:
        parts.append(f"CVSS {f.cvss:g}")
    if f.exploit_available:
        parts.append(":boom: exploit available")
    return " · ".join(parts)


def headline(detail: DecisionDetail, follow_up_count: int = 0) -> str:
    _emoji, words = _HEADLINES.get(detail.action, ("", detail.action.value))
    suffix = f" ({follow_up_count} updates)" if follow_up_count else ""
    return f"{words}: {image_name(detail)}{suffix}"


def _settings_lines(detail: DecisionDetail) -> str:
    """A repository decision's changes, one line each: setting, before -> after."""
    esc = mrkdwn_escape
    lines = [
        f"• `{esc(c.setting)}`: {esc(c.before or '-')} → {esc(c.after or '-')}"
        + ("" if c.applied else " (not applied)")
        for c in detail.settings_changes[:20]
    ]
    more = len(detail.settings_changes) - len(lines)
    return "\n".join(lines + ([f"_and {more} more_"] if more > 0 else []))


def _facts(detail: DecisionDetail) -> dict[str, Any]:
    esc = mrkdwn_escape
    if detail.digest is None:
        facts = {
            "Repository": f"`{esc(detail.repository)}`",
            "Account / region": f"{esc(detail.account)} / {esc(detail.region)}",
            "Created by": esc(detail.creation_path or "-"),
            "Profile / mode": esc(f"{detail.rule or '-'} / {detail.environment} {detail.mode}"),
        }
        return {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in facts.items()]}
    facts = {
        "Repository": f"`{esc(detail.repository)}`",
        "Digest": f"`{esc(detail.digest[:19])}…`",
        "Account / region": f"{esc(detail.account)} / {esc(detail.region)}",
        "Tags": esc(", ".join(detail.tags) or "(none)"),
        "Severity counts": esc(_counts_line(detail)),
        "Rule / mode": esc(f"{detail.rule or '-'} / {detail.environment} {detail.mode}"),
    }
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in facts.items()]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text, MAX_TEXT)}}


def _findings_section(detail: DecisionDetail) -> dict[str, Any]:
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
    return _section("\n".join(lines))


def _updates_section(follow_ups: list[DecisionDetail]) -> dict[str, Any]:
    lines = [f"• {u.time:%H:%M:%S} {u.action.value}: {mrkdwn_escape('; '.join(u.reasons)[:200])}" for u in follow_ups]
    return _section(f"*Updates in the last window ({len(follow_ups)}):*\n" + "\n".join(lines))


def slack_message(
    detail: DecisionDetail, follow_ups: list[DecisionDetail] | None = None, home: Scope | None = None
) -> dict[str, Any]:
    """Block Kit message plus plain-text fallback, kept within Slack's limits. Every piece of event text in
    mrkdwn is escaped; links go only to the ECR console and known advisory sites."""
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
        _facts(detail),
    ]
    if detail.top_findings:
        blocks.append(_findings_section(detail))
    if detail.settings_changes:
        blocks.append(_section(_settings_lines(detail)))
    reasons = "\n".join(f"• {mrkdwn_escape(r)}" for r in detail.reasons)
    blocks.append(_section(f"*What ecr-warden did:* it {_did(detail)}.\n{reasons}"))
    if follow_ups:
        blocks.append(_updates_section(follow_ups))
    next_steps = commands(detail, home)
    if next_steps:
        blocks.append(
            _section("\n".join(f"*{name}:* ```{mrkdwn_escape(command)}```" for name, command in next_steps.items()))
        )
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
    context = mrkdwn_escape(
        f"ecr-warden · decision {detail.decision_id} · trigger {detail.trigger} · {detail.time:%Y-%m-%d %H:%M:%S} UTC"
    )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _truncate(context, MAX_TEXT)}]})
    # the fallback text is mrkdwn too (notifications and clients without blocks show it)
    return {"text": mrkdwn_escape(plain_text(detail, follow_ups)), "blocks": blocks[:MAX_BLOCKS]}


def plain_text(detail: DecisionDetail, follow_ups: list[DecisionDetail] | None = None) -> str:
    """Fallback for clients that don't render blocks (also the notification preview)."""
    top = ", ".join(f.id for f in detail.top_findings[:3])
    if detail.digest is None:
        settings = ", ".join(c.setting for c in detail.settings_changes) or "; ".join(detail.reasons[:2])
        return _truncate(f"{headline(detail)} — {settings or 'no change'}", MAX_TEXT)
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


def sns_document(
    detail: DecisionDetail, follow_ups: list[DecisionDetail] | None = None, home: Scope | None = None
) -> dict[str, Any]:
    """The machine-readable message: the decision, plus what the Slack message adds for people."""
    return {
        "schema_version": SNS_SCHEMA_VERSION,
        "kind": "follow_up" if follow_ups else "decision",
        "summary": plain_text(detail, follow_ups),
        "highest_severity": highest_severity(detail),
        "console_url": console_url(detail),
        "commands": commands(detail, home),
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
        "region": detail.region,
        "environment": detail.environment,
    }
    # SNS rejects an attribute with an empty value (a decision of a deployment without an environment name)
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items() if value}
