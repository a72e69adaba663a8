"""The scan gate's use cases: a scan result, a continuous-scan finding, a push. Orchestrates the pure decision
(evaluate.py) with the ports (registry, findings, audit store, announcer).

Safety properties, in the order the code enforces them:
- write-ahead: the decision and the image's original tags are stored before the image is touched;
- nothing is destroyed: the quarantine tag is added before deployable tags are removed, so the image keeps a tag;
- idempotent: a decision identical to the stored one (same fingerprint) does nothing but verify the image;
- loop-safe: pushes of ecr-warden's own tags are recognised by name and ignored without any AWS call.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ecr_warden.adapters.registry import INDEX_MEDIA_TYPES, ImageInfo, TagConflictError
from ecr_warden.config import Settings
from ecr_warden.contracts.aws_events import (
    AwsEvent,
    EcrImageActionEvent,
    EcrImageScanEvent,
    Inspector2FindingEvent,
    Inspector2ScanEvent,
)
from ecr_warden.contracts.decision import SCHEMA_VERSION, Action, DecisionDetail, FindingSummary
from ecr_warden.errors import PermanentError, UnsupportedEventError, WardenError
from ecr_warden.gate.evaluate import Decision, Verdict, can_skip_findings_read, evaluate
from ecr_warden.gate.findings import Finding, from_inspector, top
from ecr_warden.gate.ports import Announcer, AuditStore, EnhancedFindings, Registry
from ecr_warden.gate.records import BLOCKED, HistoryEntry, ImageRecord, ImageStatus, merge_tags
from ecr_warden.observability import MetricUnit, logger, metrics
from ecr_warden.policy.model import Policy


class ReleaseError(PermanentError):
    """The image cannot be released (unknown to ecr-warden, or not blocked)."""


class PartialActionError(WardenError):
    """Some of an action's ECR calls failed; the event is retried and the retry completes it."""


@dataclass(frozen=True)
class Outcome:
    repository: str
    digest: str
    action: str
    reason: str
    status: str | None = None
    announced: DecisionDetail | None = None


@dataclass(frozen=True)
class Trigger:
    name: str
    event_id: str | None


def _summaries(findings: list[Finding], limit: int = 10) -> list[FindingSummary]:
    return [
        FindingSummary(id=f.vulnerability_id, **f.model_dump(exclude={"vulnerability_id"}))
        for f in top(findings, limit)
    ]


@dataclass
class ScanGate:
    policy: Policy
    settings: Settings
    registry: Registry
    enhanced: EnhancedFindings
    store: AuditStore
    announcer: Announcer
    account: str
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def audit_mode(self) -> bool:
        return self.settings.mode == "audit"

    def handle(self, event: AwsEvent) -> Outcome:
        if isinstance(event, EcrImageScanEvent | Inspector2ScanEvent):
            return self.on_scan(event)
        if isinstance(event, Inspector2FindingEvent):
            return self.on_finding(event)
        if isinstance(event, EcrImageActionEvent):
            return self.on_push(event)
        raise UnsupportedEventError(source=event.source, detail_type=event.detail_type)

    # -- triggers -------------------------------------------------------------------------------------------

    def on_scan(self, event: EcrImageScanEvent | Inspector2ScanEvent) -> Outcome:
        detail, trigger = event.detail, Trigger(event.detail_type, event.id)
        repository, digest, tags = detail.repository_name, detail.image_digest, detail.image_tags
        basic = isinstance(event, EcrImageScanEvent)
        if basic and detail.scan_status != "COMPLETE":
            return self._scan_failed(repository, digest, tags, detail.scan_status, trigger)
        if not basic and detail.scan_status != "INITIAL_SCAN_COMPLETE":
            return Outcome(repository, digest, "noop", f"scan status {detail.scan_status} is not a result")
        if can_skip_findings_read(self.policy, repository, detail.finding_severity_counts, zero_means_absent=basic):
            counts = detail.finding_severity_counts.as_dict() if detail.finding_severity_counts else {}
            return self._record_clean(repository, digest, tags, counts, trigger)
        findings = (
            self.registry.basic_findings(repository, digest)
            if basic
            else self.enhanced.active_findings(repository, digest)
        )
        if findings is None:
            return self._skipped(repository, digest, "scan findings are gone with the image", trigger)
        return self._decide(repository, digest, tags, findings, trigger)

    def on_finding(self, event: Inspector2FindingEvent) -> Outcome:
        detail, trigger = event.detail, Trigger(event.detail_type, event.id)
        image = detail.ecr_image
        assert image is not None  # guaranteed by the contract
        repository, digest, tags = image.repository_name, image.image_hash, image.image_tags
        finding = from_inspector(detail)
        if detail.status == "ACTIVE":
            alone = evaluate(self.policy, repository, digest, tags, [finding], self.now())
            if alone.verdict is Verdict.PASS:
                return Outcome(repository, digest, "noop", f"{finding.vulnerability_id} is below the thresholds")
            record = self.store.get(repository, digest)
            if (
                record
                and finding.vulnerability_id in record.counted_ids
                and record.verdict in (Verdict.BLOCK, alone.verdict)
            ):
                return Outcome(repository, digest, "noop", "finding already behind the current decision", record.status)
            findings = self.enhanced.active_findings(repository, digest)
            if finding.vulnerability_id not in {f.vulnerability_id for f in findings}:
                findings.append(finding)  # ListFindings may not show a brand-new finding yet
            return self._decide(repository, digest, tags, findings, trigger, record)
        record = self.store.get(repository, digest)
        if record is None or record.status not in (*BLOCKED, ImageStatus.TAGGED, ImageStatus.AUDITED):
            return Outcome(repository, digest, "noop", "a closed finding cannot make this image worse")
        findings = [
            f
            for f in self.enhanced.active_findings(repository, digest)
            if f.vulnerability_id != finding.vulnerability_id
        ]
        return self._decide(repository, digest, tags, findings, trigger, record)

    def on_push(self, event: EcrImageActionEvent) -> Outcome:
        detail, trigger = event.detail, Trigger(event.detail_type, event.id)
        repository, digest, tag = detail.repository_name, detail.image_digest, detail.image_tag
        if detail.action_type != "PUSH" or detail.result != "SUCCESS":
            return Outcome(repository, digest, "noop", f"{detail.action_type}/{detail.result} is not a push")
        if tag and self.policy.is_own_tag(tag, digest):
            metrics.add_metric(name="OwnEventsIgnored", unit=MetricUnit.Count, value=1)
            return Outcome(repository, digest, "noop", f"own tag {tag}: ecr-warden's own push")
        if detail.manifest_media_type in INDEX_MEDIA_TYPES:
            return self._map_index(repository, digest, trigger)
        record = self.store.get(repository, digest)
        if record is None or not tag:
            return Outcome(repository, digest, "noop", "nothing known against this image yet")
        if record.status is ImageStatus.QUARANTINED:
            return self._enforce_quarantine(record, None, trigger)
        return Outcome(repository, digest, "noop", f"image is {record.status}", record.status)

    # -- deciding -------------------------------------------------------------------------------------------

    def _is_own_tag(self, tag: str, digest: str, record: ImageRecord | None) -> bool:
        """Exactly the tags ecr-warden put on this digest: by the current policy, or as recorded (a changed
        prefix must never make our own quarantine tag look foreign; removing it could delete the image)."""
        recorded = (record.quarantine_tag, record.marker_tag) if record else ()
        return self.policy.is_own_tag(tag, digest) or tag in recorded

    def _entry(self, action: Action | str, status: ImageStatus, reason: str, trigger: Trigger) -> HistoryEntry:
        return HistoryEntry(
            at=self.now(),
            action=str(action),
            status=status,
            reason=reason,
            trigger=trigger.name,
            event_id=trigger.event_id,
        )

    def _record_clean(
        self, repository: str, digest: str, tags: list[str], counts: dict[str, int], trigger: Trigger
    ) -> Outcome:
        """Clean by the event's own counts: one conditional write and one event, no read."""
        rule = self.policy.rule_for(repository)
        decision = Decision(
            verdict=Verdict.PASS,
            rule=rule.name if rule else None,
            block_method="quarantine",
            audit=self.audit_mode,
            reasons=["no finding at or above the policy thresholds"],
            severity_counts=counts,
            counted=[],
            exempted=[],
            findings_total=sum(counts.values()),
        )
        entry = self._entry(Action.PASSED, ImageStatus.PASSED, decision.reasons[0], trigger)
        previous = self.store.record_pass(
            repository, digest, decision.fingerprint, counts, decision.rule, entry, tags, self.now()
        )
        if previous is None:  # recorded before, or in a state that needs the full path
            return self._apply(repository, digest, tags, decision, self.store.get(repository, digest), trigger)
        record = ImageRecord(
            repository=repository,
            digest=digest,
            status=ImageStatus.PASSED,
            updated_at=self.now(),
            original_tags=tags,
            severity_counts=counts,
        )
        return self._report(record, decision, Action.PASSED, previous or None, trigger)

    def _decide(
        self,
        repository: str,
        digest: str,
        tags: list[str],
        findings: list[Finding],
        trigger: Trigger,
        record: ImageRecord | None = None,
    ) -> Outcome:
        record = record or self.store.get(repository, digest)
        known_tags = merge_tags(record.original_tags if record else [], tags)
        decision = evaluate(self.policy, repository, digest, known_tags, findings, self.now(), self.audit_mode)
        return self._apply(repository, digest, tags, decision, record, trigger)

    def _apply(
        self,
        repository: str,
        digest: str,
        tags: list[str],
        decision: Decision,
        record: ImageRecord | None,
        trigger: Trigger,
    ) -> Outcome:
        previous = record.status if record else None
        if record and record.fingerprint == decision.fingerprint and previous is not ImageStatus.PENDING:
            # Same decision again (duplicate, replay, or the retry of a run that failed half-way): make sure
            # what the decision requires is in place in ECR, without announcing it a second time.
            if previous is ImageStatus.QUARANTINED:
                return self._enforce_quarantine(record, None, trigger)
            if previous in (ImageStatus.ARCHIVED, ImageStatus.TAGGED):
                return self._complete(record, trigger)
            if previous is ImageStatus.RELEASED:
                return Outcome(
                    repository, digest, Action.KEPT_RELEASED, "released by an admin; findings unchanged", previous
                )
            return Outcome(repository, digest, "noop", "decision unchanged (duplicate or replayed event)", previous)
        if record and previous is ImageStatus.EXEMPT and record.exempt_until and record.exempt_until > self.now():
            return self._note(record, decision, "noop", f"image exempt until {record.exempt_until}", trigger)
        if decision.verdict is Verdict.BLOCK:
            if record and previous is ImageStatus.RELEASED and record.released_fingerprint == decision.fingerprint:
                return self._note(
                    record,
                    decision,
                    Action.KEPT_RELEASED,
                    "released by an admin; findings unchanged since",
                    trigger,
                )
            if record and previous in BLOCKED:
                return self._note(record, decision, Action.UPDATED, decision.reasons[0], trigger, announce=True)
            return self._block(repository, digest, tags, decision, record, trigger)
        if record and previous in BLOCKED:
            if self.policy.auto_release_on_close and not decision.audit:
                return self._release(
                    record, decision, "all findings behind the block are closed (auto-release)", trigger
                )
            return self._note(
                record,
                decision,
                Action.NOW_COMPLIANT,
                "no longer breaks the policy; release is left to an admin",
                trigger,
                announce=True,
            )
        if decision.verdict is Verdict.TAG:
            if record and previous is ImageStatus.TAGGED:
                return self._note(record, decision, Action.UPDATED, decision.reasons[0], trigger, announce=True)
            return self._tag(repository, digest, tags, decision, record, trigger)
        return self._pass(repository, digest, tags, decision, record, trigger)

    # -- acting ---------------------------------------------------------------------------------------------

    def _new_record(self, repository: str, digest: str, record: ImageRecord | None) -> ImageRecord:
        return (
            record.model_copy(deep=True)
            if record
            else ImageRecord(repository=repository, digest=digest, status=ImageStatus.PENDING, updated_at=self.now())
        )

    def _with_decision(
        self,
        record: ImageRecord,
        decision: Decision,
        status: ImageStatus,
        action: Action | str,
        reason: str,
        trigger: Trigger,
    ) -> ImageRecord:
        updated = record.model_copy(
            update={
                "status": status,
                "updated_at": self.now(),
                "verdict": decision.verdict.value,
                "rule": decision.rule,
                "fingerprint": decision.fingerprint,
                "severity_counts": decision.severity_counts,
                "top_findings": _summaries(decision.counted),
                "findings_total": decision.findings_total,
                "counted_ids": [f.vulnerability_id for f in decision.counted],
            }
        )
        updated.remember(self._entry(action, status, reason, trigger))
        return updated

    def _block(
        self,
        repository: str,
        digest: str,
        tags: list[str],
        decision: Decision,
        record: ImageRecord | None,
        trigger: Trigger,
    ) -> Outcome:
        info = self.registry.describe(repository, digest)
        if info is None:
            return self._skipped(repository, digest, "image no longer exists", trigger, record)
        if info.is_artifact:
            return Outcome(repository, digest, "noop", f"{info.artifact_media_type} artifact: never acted on")
        deployable = [t for t in info.tags if not self._is_own_tag(t, digest, record)]
        if info.media_type not in INDEX_MEDIA_TYPES:
            indexes = record.index_digests if record else []
            if not indexes and not deployable:
                indexes = self.registry.indexes_containing(repository, digest)
            if indexes:  # a per-platform image of a multi-arch index: the index's tags pull it too
                outcomes = [
                    self._apply(repository, index, [], decision, self.store.get(repository, index), trigger)
                    for index in indexes
                ]
                if deployable and not decision.audit:  # per-platform tags of its own (v1-amd64): block those too
                    outcomes.insert(
                        0, self._quarantine(repository, digest, info, deployable, decision, record, trigger)
                    )
                    return outcomes[0]
                mirrored = outcomes[0].status if outcomes[0].status in ImageStatus.__members__ else None
                child = self._with_decision(
                    self._new_record(repository, digest, record),
                    decision,
                    ImageStatus(mirrored)
                    if mirrored
                    else (ImageStatus.AUDITED if decision.audit else ImageStatus.QUARANTINED),
                    outcomes[0].action,
                    f"blocked through index(es) {', '.join(indexes)}",
                    trigger,
                )
                child.index_digests = merge_tags(child.index_digests, indexes)
                self.store.save(child, record.version if record else 0)
                return Outcome(
                    repository,
                    digest,
                    outcomes[0].action,
                    f"blocked index(es) {', '.join(indexes)}",
                    child.status,
                    outcomes[0].announced,
                )
        if decision.audit:
            action = Action.WOULD_ARCHIVE if decision.block_method == "archive" else Action.WOULD_QUARANTINE
            return self._audited(repository, digest, deployable, decision, record, action, trigger)
        if decision.block_method == "archive":
            return self._archive(repository, digest, deployable, decision, record, trigger)
        return self._quarantine(repository, digest, info, deployable, decision, record, trigger)

    def _quarantine(
        self,
        repository: str,
        digest: str,
        info: ImageInfo,
        deployable: list[str],
        decision: Decision,
        record: ImageRecord | None,
        trigger: Trigger,
    ) -> Outcome:
        manifest = self.registry.manifest(repository, digest)
        if manifest is None:
            return self._skipped(repository, digest, "image manifest no longer exists", trigger, record)
        quarantine_tag = self.policy.quarantine_tag(digest)
        base = self._new_record(repository, digest, record)
        base.original_tags = merge_tags(base.original_tags if base.status is not ImageStatus.PASSED else [], deployable)
        base.quarantine_tag = quarantine_tag
        updated = self._with_decision(
            base, decision, ImageStatus.QUARANTINED, Action.QUARANTINED, decision.reasons[0], trigger
        )
        self.store.save(updated, record.version if record else 0)  # write-ahead: before the image is touched
        if quarantine_tag not in info.tags:
            self.registry.add_tag(repository, digest, manifest, quarantine_tag)
        failures = self.registry.remove_tags(repository, deployable)
        if failures:
            raise PartialActionError(f"{repository}@{digest}: could not remove tags: {'; '.join(failures)}")
        metrics.add_metric(name="ImagesQuarantined", unit=MetricUnit.Count, value=1)
        logger.info(
            "quarantined image",
            repository=repository,
            digest=digest,
            removed_tags=deployable,
            quarantine_tag=quarantine_tag,
        )
        return self._report(
            updated, decision, Action.QUARANTINED, record.status if record else None, trigger, tags=deployable
        )

    def _archive(
        self,
        repository: str,
        digest: str,
        deployable: list[str],
        decision: Decision,
        record: ImageRecord | None,
        trigger: Trigger,
    ) -> Outcome:
        base = self._new_record(repository, digest, record)
        base.original_tags = merge_tags(base.original_tags, deployable)
        updated = self._with_decision(
            base, decision, ImageStatus.ARCHIVED, Action.ARCHIVED, decision.reasons[0], trigger
        )
        self.store.save(updated, record.version if record else 0)
        self.registry.archive(repository, digest)
        metrics.add_metric(name="ImagesArchived", unit=MetricUnit.Count, value=1)
        logger.info("archived image", repository=repository, digest=digest)
        return self._report(
            updated, decision, Action.ARCHIVED, record.status if record else None, trigger, tags=deployable
        )

    def _tag(
        self,
        repository: str,
        digest: str,
        tags: list[str],
        decision: Decision,
        record: ImageRecord | None,
        trigger: Trigger,
    ) -> Outcome:
        if decision.audit:
            return self._audited(repository, digest, tags, decision, record, Action.WOULD_TAG, trigger)
        manifest = self.registry.manifest(repository, digest)
        if manifest is None:
            return self._skipped(repository, digest, "image no longer exists", trigger, record)
        marker = self.policy.marker_tag(digest)
        base = self._new_record(repository, digest, record)
        base.original_tags, base.marker_tag = merge_tags(base.original_tags, tags), marker
        updated = self._with_decision(base, decision, ImageStatus.TAGGED, Action.TAGGED, decision.reasons[0], trigger)
        self.store.save(updated, record.version if record else 0)
        self.registry.add_tag(repository, digest, manifest, marker)
        metrics.add_metric(name="ImagesTagged", unit=MetricUnit.Count, value=1)
        return self._report(updated, decision, Action.TAGGED, record.status if record else None, trigger, tags=tags)

    def _pass(
        self,
        repository: str,
        digest: str,
        tags: list[str],
        decision: Decision,
        record: ImageRecord | None,
        trigger: Trigger,
    ) -> Outcome:
        base = self._new_record(repository, digest, record)
        if base.status is ImageStatus.TAGGED and base.marker_tag and not decision.audit:
            self.registry.remove_tags(repository, [base.marker_tag])  # the flag no longer applies
            base.marker_tag = None
        base.original_tags = merge_tags(base.original_tags, tags)
        updated = self._with_decision(base, decision, ImageStatus.PASSED, Action.PASSED, decision.reasons[0], trigger)
        self.store.save(updated, record.version if record else 0)
        return self._report(updated, decision, Action.PASSED, record.status if record else None, trigger)

    def _audited(
        self,
        repository: str,
        digest: str,
        tags: list[str],
        decision: Decision,
        record: ImageRecord | None,
        action: Action,
        trigger: Trigger,
    ) -> Outcome:
        base = self._new_record(repository, digest, record)
        base.original_tags = merge_tags(base.original_tags, tags)
        base.audit_action = action.value
        updated = self._with_decision(
            base,
            decision,
            ImageStatus.AUDITED,
            action,
            "audit mode, nothing changed: " + decision.reasons[0],
            trigger,
        )
        self.store.save(updated, record.version if record else 0)
        logger.info("audit mode: image left untouched", repository=repository, digest=digest, would=action.value)
        return self._report(updated, decision, action, record.status if record else None, trigger, tags=tags)

    def _complete(self, record: ImageRecord, trigger: Trigger) -> Outcome:
        """Finish an archive or a marker tag whose ECR call failed after the record was written."""
        repository, digest = record.repository, record.digest
        info = self.registry.describe(repository, digest)
        if info is None:
            return Outcome(repository, digest, "noop", "image no longer exists", record.status)
        if self.audit_mode:
            return Outcome(repository, digest, "noop", "decision unchanged", record.status)
        if record.status is ImageStatus.ARCHIVED and info.status not in ("ARCHIVED", None):
            self.registry.archive(repository, digest)
            return Outcome(repository, digest, Action.ARCHIVED, "completed the archive", record.status)
        if record.status is ImageStatus.TAGGED and record.marker_tag and record.marker_tag not in info.tags:
            manifest = self.registry.manifest(repository, digest)
            if manifest is not None:
                self.registry.add_tag(repository, digest, manifest, record.marker_tag)
                return Outcome(repository, digest, Action.TAGGED, "completed the marker tag", record.status)
        return Outcome(repository, digest, "noop", "decision unchanged (duplicate or replayed event)", record.status)

    def _enforce_quarantine(self, record: ImageRecord, info: ImageInfo | None, trigger: Trigger) -> Outcome:
        """A quarantined digest stays unpullable by tag: remove any deployable tag that reappeared."""
        repository, digest = record.repository, record.digest
        info = info or self.registry.describe(repository, digest)
        if info is None:
            return Outcome(repository, digest, "noop", "quarantined image no longer exists", record.status)
        leftover = [t for t in info.tags if not self._is_own_tag(t, digest, record)]
        if not leftover:
            return Outcome(repository, digest, "noop", "quarantine intact", record.status)
        if self.audit_mode:
            return Outcome(
                repository,
                digest,
                Action.WOULD_REMOVE_TAG,
                f"audit mode: would remove {leftover}",
                record.status,
            )
        quarantine_tag = record.quarantine_tag or self.policy.quarantine_tag(digest)
        updated = record.model_copy(
            update={
                "original_tags": merge_tags(record.original_tags, leftover),
                "updated_at": self.now(),
                "quarantine_tag": quarantine_tag,
            }
        )
        updated.remember(self._entry(Action.RETAG_BLOCKED, record.status, f"removed tag(s) {leftover}", trigger))
        self.store.save(updated, record.version)
        if quarantine_tag not in info.tags:  # never remove the last tag: that would delete the image
            manifest = self.registry.manifest(repository, digest)
            if manifest is None:
                return Outcome(repository, digest, "noop", "quarantined image no longer exists", record.status)
            self.registry.add_tag(repository, digest, manifest, quarantine_tag)
        failures = self.registry.remove_tags(repository, leftover)
        if failures:
            raise PartialActionError(f"{repository}@{digest}: could not remove tags: {'; '.join(failures)}")
        metrics.add_metric(name="RetagsBlocked", unit=MetricUnit.Count, value=1)
        logger.warning("re-tag of a quarantined image blocked", repository=repository, digest=digest, tags=leftover)
        decision = self._decision_of(updated)
        return self._report(
            updated, decision, Action.RETAG_BLOCKED, record.status, trigger, reason=f"removed {leftover}", tags=leftover
        )

    def release(self, repository: str, digest: str, reason: str, by: str) -> Outcome:
        """An admin releases a blocked image: the recorded tags come back exactly, with an audit trail.
        Running it again on a released image finishes whatever an interrupted release left undone."""
        record = self.store.get(repository, digest)
        if record is None:
            raise ReleaseError(f"{repository}@{digest}: ecr-warden has no record of this image")
        if record.status is ImageStatus.RELEASED:
            restored, _conflicts = self._restore_in_ecr(record)
            return Outcome(
                repository, digest, "noop", f"already released; tags in place: {restored or '-'}", record.status
            )
        if record.status not in (*BLOCKED, ImageStatus.TAGGED, ImageStatus.AUDITED):
            raise ReleaseError(f"{repository}@{digest} is {record.status.value}: there is nothing to release")
        return self._release(
            record, self._decision_of(record), f"released by {by}: {reason}", Trigger("admin release", None)
        )

    def _release(self, record: ImageRecord, decision: Decision, reason: str, trigger: Trigger) -> Outcome:
        """Write-ahead: the record says RELEASED before ECR changes, so the pushes of the restored tags find the
        image released (and are not undone as re-tags of a quarantined digest)."""
        updated = self._with_decision(record, decision, ImageStatus.RELEASED, Action.RELEASED, reason, trigger)
        updated.released_fingerprint = record.fingerprint
        updated.released_from = record.status
        updated = self.store.save(updated, record.version)
        restored, conflicts = self._restore_in_ecr(updated)
        if conflicts:
            updated.remember(
                self._entry(
                    "release_conflicts",
                    ImageStatus.RELEASED,
                    f"not restored (tag now on another image): {', '.join(conflicts)}",
                    trigger,
                )
            )
            updated = self.store.save(updated, updated.version)
            reason += f"; not restored (tag now on another image): {', '.join(conflicts)}"
        metrics.add_metric(name="ImagesReleased", unit=MetricUnit.Count, value=1)
        logger.info(
            "released image", repository=record.repository, digest=record.digest, restored=restored, conflicts=conflicts
        )
        return self._report(updated, decision, Action.RELEASED, record.status, trigger, reason=reason, tags=restored)

    def _restore_in_ecr(self, record: ImageRecord) -> tuple[list[str], list[str]]:
        """Idempotent: put back the recorded tags that are free (a tag now on another image is not moved),
        then drop the quarantine tag, but only once another tag holds the image."""
        repository, digest = record.repository, record.digest
        restored: list[str] = []
        conflicts: list[str] = []
        if record.released_from is ImageStatus.ARCHIVED:
            info = self.registry.describe(repository, digest)
            if info is not None and info.status == "ARCHIVED":
                self.registry.restore(repository, digest)
            return list(record.original_tags), []
        if record.released_from is ImageStatus.TAGGED and record.marker_tag:
            self.registry.remove_tags(repository, [record.marker_tag])
            return list(record.original_tags), []
        if record.released_from is not ImageStatus.QUARANTINED:
            return restored, conflicts
        manifest = self.registry.manifest(repository, digest)
        if manifest is None:
            return restored, conflicts
        for tag in record.original_tags:
            current = self.registry.digest_of(repository, tag)
            if current not in (None, digest):
                conflicts.append(tag)
                continue
            try:
                if current is None:
                    self.registry.add_tag(repository, digest, manifest, tag)
                restored.append(tag)
            except TagConflictError:
                conflicts.append(tag)
        if record.quarantine_tag and restored:
            self.registry.remove_tags(repository, [record.quarantine_tag])
        return restored, conflicts

    def _note(
        self,
        record: ImageRecord,
        decision: Decision,
        action: Action | str,
        reason: str,
        trigger: Trigger,
        announce: bool = False,
    ) -> Outcome:
        """Record a decision that changes nothing in ECR (status stays)."""
        updated = self._with_decision(record, decision, record.status, action, reason, trigger)
        self.store.save(updated, record.version)
        detail = None
        if announce and isinstance(action, Action):
            detail = self._announce(updated, decision, action, record.status, trigger)
        return Outcome(record.repository, record.digest, str(action), reason, updated.status, detail)

    def _scan_failed(self, repository: str, digest: str, tags: list[str], status: str, trigger: Trigger) -> Outcome:
        rule = self.policy.rule_for(repository)
        verdict = Verdict.BLOCK if self.policy.unscanned == "block" and rule else Verdict.PASS
        reason = f"scan {status}: policy says unscanned images are {self.policy.unscanned}ed"
        decision = Decision(
            verdict=verdict,
            rule=rule.name if rule else None,
            block_method=rule.block_method if rule else "quarantine",
            audit=self.audit_mode or bool(rule and rule.audit),
            reasons=[reason],
            severity_counts={},
            counted=[],
            exempted=[],
            findings_total=0,
            note=f"scan {status}",
        )
        record = self.store.get(repository, digest)
        if verdict is Verdict.BLOCK:
            return self._apply(repository, digest, tags, decision, record, trigger)
        base = self._new_record(repository, digest, record)
        base.original_tags = merge_tags(base.original_tags, tags)
        updated = self._with_decision(base, decision, ImageStatus.SCAN_FAILED, Action.SCAN_FAILED, reason, trigger)
        if record and record.fingerprint == decision.fingerprint and record.status is ImageStatus.SCAN_FAILED:
            return Outcome(repository, digest, "noop", "scan failure already recorded", record.status)
        self.store.save(updated, record.version if record else 0)
        return self._report(
            updated, decision, Action.SCAN_FAILED, record.status if record else None, trigger, reason=reason
        )

    def _skipped(
        self, repository: str, digest: str, reason: str, trigger: Trigger, record: ImageRecord | None = None
    ) -> Outcome:
        """The image or repository is gone: record it once and stop (no error, no retry loop)."""
        record = record or self.store.get(repository, digest)
        if record and record.status is ImageStatus.SKIPPED:
            return Outcome(repository, digest, "noop", reason, record.status)
        base = self._new_record(repository, digest, record)
        base.status, base.updated_at = ImageStatus.SKIPPED, self.now()
        base.remember(self._entry(Action.SKIPPED, ImageStatus.SKIPPED, reason, trigger))
        self.store.save(base, record.version if record else 0)
        metrics.add_metric(name="EventsSkipped", unit=MetricUnit.Count, value=1)
        logger.info("image gone, skipped", repository=repository, digest=digest, reason=reason)
        return Outcome(repository, digest, Action.SKIPPED, reason, ImageStatus.SKIPPED)

    # -- multi-arch -----------------------------------------------------------------------------------------

    def _map_index(self, repository: str, index_digest: str, trigger: Trigger) -> Outcome:
        manifest = self.registry.manifest(repository, index_digest)
        if manifest is None:
            return self._skipped(repository, index_digest, "image index no longer exists", trigger)
        children = manifest.platform_children()
        for child in children:
            self.store.link_child(repository, child, index_digest, self.now())
        record = self.store.get(repository, index_digest)
        base = self._new_record(repository, index_digest, record)
        base.child_digests = merge_tags(base.child_digests, children)
        if base.child_digests != (record.child_digests if record else None):
            base.remember(self._entry("mapped", base.status, f"{len(children)} platform image(s)", trigger))
            base.updated_at = self.now()
            base = self.store.save(base, record.version if record else 0)
        if base.status is ImageStatus.QUARANTINED:
            return self._enforce_quarantine(base, None, trigger)
        for child in children:  # a child scanned before its index arrived may already be blocked
            child_record = self.store.get(repository, child)
            if (
                child_record
                and child_record.verdict == Verdict.BLOCK
                and child_record.status in (*BLOCKED, ImageStatus.AUDITED)
            ):
                # through the state machine: a released or exempt index stays as an admin left it
                return self._apply(repository, index_digest, [], self._decision_of(child_record), base, trigger)
        return Outcome(repository, index_digest, "mapped", f"index of {len(children)} platform image(s)", base.status)

    def _decision_of(self, record: ImageRecord) -> Decision:
        """The decision a stored record stands for (to act on an index with its child's decision)."""
        counted = [Finding(vulnerability_id=f.id, **f.model_dump(exclude={"id"})) for f in record.top_findings]
        rule = self.policy.rule_for(record.repository)
        return Decision(
            verdict=Verdict(record.verdict or "PASS"),
            rule=record.rule,
            block_method=rule.block_method if rule else "quarantine",
            audit=self.audit_mode or bool(rule and rule.audit),
            reasons=[h.reason for h in record.history[-1:]] or ["recorded decision"],
            severity_counts=record.severity_counts,
            counted=counted,
            exempted=[],
            findings_total=record.findings_total,
            pinned_fingerprint=record.fingerprint,
        )

    # -- announcing -----------------------------------------------------------------------------------------

    def _report(
        self,
        record: ImageRecord,
        decision: Decision,
        action: Action,
        previous: str | None,
        trigger: Trigger,
        reason: str | None = None,
        tags: list[str] | None = None,
    ) -> Outcome:
        """Announce a decision and return the outcome that says so."""
        detail = self._announce(record, decision, action, previous, trigger, tags=tags)
        return Outcome(record.repository, record.digest, action, reason or decision.reasons[0], record.status, detail)

    def _announce(
        self,
        record: ImageRecord,
        decision: Decision,
        action: Action,
        previous: str | None,
        trigger: Trigger,
        tags: list[str] | None = None,
    ) -> DecisionDetail:
        detail = DecisionDetail(
            schema_version=SCHEMA_VERSION,
            decision_id=str(uuid.uuid4()),
            time=self.now(),
            account=self.account,
            region=self.settings.region,
            environment=self.settings.environment,
            mode=self.settings.mode,
            repository=record.repository,
            digest=record.digest,
            tags=tags if tags is not None else record.original_tags,
            verdict=decision.verdict.value,
            action=action,
            status=record.status.value,
            previous_status=previous,
            rule=decision.rule,
            reasons=decision.reasons,
            severity_counts=decision.severity_counts,
            top_findings=_summaries(decision.counted),
            findings_total=decision.findings_total,
            exempted=decision.exempted,
            quarantine_tag=record.quarantine_tag,
            marker_tag=record.marker_tag,
            trigger=trigger.name,
            trigger_event_id=trigger.event_id,
            fingerprint=decision.fingerprint,
        )
        self.announcer.publish(detail)
        return detail
