"""`ecr-warden gate`: may a pipeline deploy this image? Waits for ecr-warden's decision (a scan takes minutes: a
fixed `sleep` is a race) and answers with an exit code a pipeline can't misread.

It reads the audit record of the image's digest (and, for a multi-arch index, of its platform images) with the
caller's credentials: `ecr:DescribeImages` to resolve a tag and `dynamodb:GetItem` on the audit table. A tag that
no longer resolves is never "0 CRITICAL": quarantine removes tags, so the command fails and says to gate by the
digest the push printed.

Exit codes: 0 deployable (passed, released, exempt; a flagged image too, with a warning), 1 blocked or not
scanned, 2 no decision in time or an error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecr_warden.domain.records import ImageRecord, ImageStatus

EXIT_DEPLOYABLE, EXIT_BLOCKED, EXIT_UNDECIDED = 0, 1, 2
DEPLOYABLE = {ImageStatus.PASSED, ImageStatus.RELEASED, ImageStatus.EXEMPT, ImageStatus.TAGGED}
NOT_DEPLOYABLE = {
    ImageStatus.QUARANTINED,
    ImageStatus.ARCHIVED,
    ImageStatus.AUDITED,  # audit mode: the image would have been blocked
    ImageStatus.SCAN_FAILED,
    ImageStatus.UNSCANNED,
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smh]?)$")


class GateError(Exception):
    """No verdict can be given; the message says why and what to do."""


def duration(text: str) -> float:
    """`30m`, `90s`, `1h` or plain seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 90s, 1h)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


@dataclass(frozen=True)
class Verdict:
    code: int
    status: str
    lines: list[str]


def verdict_of(record: ImageRecord | None, children: list[ImageRecord | None]) -> Verdict | None:
    """The answer for the image, or None while ecr-warden has not decided yet."""
    if record is None:
        return None
    if record.child_digests:  # an index is judged by its platform images (the scanner scans those)
        return _index_verdict(record, children)
    status = record.status
    if status in NOT_DEPLOYABLE:
        return Verdict(EXIT_BLOCKED, status.value, _explain(record))
    if status in DEPLOYABLE:
        lines = _explain(record)
        if status is ImageStatus.TAGGED:
            lines.insert(0, f"warning: flagged by the policy ({record.marker_tag}); deployable")
        return Verdict(EXIT_DEPLOYABLE, status.value, lines)
    if status is ImageStatus.SKIPPED:
        raise GateError(f"{record.repository}@{record.digest} no longer exists")
    return None  # PENDING: findings lagging, or not decided yet


def _index_verdict(index: ImageRecord, children: list[ImageRecord | None]) -> Verdict | None:
    if index.status in NOT_DEPLOYABLE:
        return Verdict(EXIT_BLOCKED, index.status.value, _explain(index))
    decided = [verdict_of(child, []) for child in children]
    blocked = [v for v in decided if v is not None and v.code == EXIT_BLOCKED]
    if blocked:
        return Verdict(EXIT_BLOCKED, blocked[0].status, [f"a platform image is {blocked[0].status}", *blocked[0].lines])
    if decided and all(v is not None for v in decided):
        return Verdict(EXIT_DEPLOYABLE, "PASSED", [f"all {len(decided)} platform images deployable"])
    return None


def _explain(record: ImageRecord) -> list[str]:
    lines = []
    if record.history:
        lines.append(f"reason: {record.history[-1].reason}")
    if record.severity_counts:
        counts = ", ".join(f"{k} {v}" for k, v in record.severity_counts.items() if v)
        lines.append(f"findings: {counts or 'none'}")
    for finding in record.top_findings[:5]:
        lines.append(f"  {finding.severity:<8} {finding.id}  {finding.package or ''}")
    return lines


@dataclass
class ImageDecisions:
    """Where the gate reads: ECR for tag -> digest, the audit table for the decisions."""

    ecr: Any
    store: Any  # DynamoAuditStore of the image's account and region
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def digest(self, repository: str, tag: str) -> str:
        try:
            details = self.ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            if code in ("ImageNotFoundException", "RepositoryNotFoundException"):
                raise GateError(
                    f"{repository}:{tag} does not resolve ({code}). A quarantine removes an image's tags: gate on "
                    "the digest your push printed (--digest), never treat a missing tag as clean"
                ) from None
            raise
        return str(details["imageDetails"][0]["imageDigest"])

    def verdict(self, repository: str, digest: str) -> Verdict | None:
        record = self.store.get(repository, digest)
        children = [self.store.get(repository, child) for child in (record.child_digests if record else [])]
        return verdict_of(record, children)


def wait(decisions: ImageDecisions, repository: str, digest: str, timeout: float, interval: float) -> Verdict:
    deadline = decisions.clock() + timeout
    while True:
        found = decisions.verdict(repository, digest)
        if found is not None:
            return found
        if decisions.clock() >= deadline:
            raise GateError(
                f"no decision for {repository}@{digest} within {timeout:.0f} s: is scanning enabled for the "
                "repository (ecr-warden doctor), and did the scan finish?"
            )
        decisions.sleep(min(interval, max(0.0, deadline - decisions.clock())))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repository", required=True, help="the repository's name")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--digest", help="the image's digest, as the push printed it (recommended)")
    which.add_argument("--tag", help="the image's tag (resolved once; a tag a quarantine removed fails)")
    parser.add_argument("--timeout", type=duration, default=duration("30m"), help="how long to wait (default 30m)")
    parser.add_argument("--interval", type=duration, default=duration("10s"), help="how often to look (default 10s)")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")


def run(args: argparse.Namespace, decisions: ImageDecisions) -> int:
    try:
        digest = args.digest or decisions.digest(args.repository, args.tag)
        found = wait(decisions, args.repository, digest, args.timeout, args.interval)
    except GateError as exc:
        print(f"ecr-warden: {exc}", file=sys.stderr)
        return EXIT_UNDECIDED
    if args.json:
        print(json.dumps({"repository": args.repository, "digest": digest, "status": found.status,
                          "exit": found.code, "details": found.lines}))  # fmt: skip
    else:
        word = "deployable" if found.code == EXIT_DEPLOYABLE else "BLOCKED"
        print(f"{word}: {args.repository}@{digest} is {found.status}")
        for line in found.lines:
            print(f"  {line}")
    return found.code
