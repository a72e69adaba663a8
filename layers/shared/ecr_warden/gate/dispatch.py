"""The scan gate's front door: one use case per event type (a scan result, a continuous-scan finding, a push),
each turning its event into a decision about one image and handing it to the actor.

Loop-safe: pushes of ecr-warden's own tags are recognised by name and ignored without any AWS call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ecr_warden.contracts.aws_events import (
    AwsEvent,
    EcrImageActionEvent,
    EcrImageScanEvent,
    Inspector2FindingEvent,
    Inspector2ScanEvent,
)
from ecr_warden.contracts.checks import FindingsCheck, UnscannedCheck, due_in
from ecr_warden.contracts.decision import Action
from ecr_warden.contracts.findings import from_inspector
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import ARTIFACT_MEDIA_TYPES, INDEX_MEDIA_TYPES, ImageRef
from ecr_warden.domain.records import BLOCKED, ImageRecord, ImageStatus, merge_tags
from ecr_warden.errors import UnsupportedEventError
from ecr_warden.gate import lag, multiarch, outbox, reuse, transitions, unscanned
from ecr_warden.gate.acting import Actor
from ecr_warden.gate.context import Case, GateContext, Outcome, Trigger
from ecr_warden.gate.evaluate import Decision, Verdict, can_skip_findings_read, evaluate
from ecr_warden.gate.plan import Plan
from ecr_warden.gate.ports import Announcer, AuditStore, EnhancedFindings, Ports, Registry
from ecr_warden.observability import MetricUnit, metrics

CLEAN_REASON = "no finding at or above the policy thresholds"


@dataclass
class ScanGate:
    ctx: GateContext
    ports: Ports
    actor: Actor = field(init=False)

    def __post_init__(self) -> None:
        self.actor = Actor(self.ctx, self.ports)

    # The ports, by name: a test may swap one on a built gate (every part of the gate shares `ports`).
    @property
    def registry(self) -> Registry:
        return self.ports.registry

    @registry.setter
    def registry(self, registry: Registry) -> None:
        self.ports.registry = registry

    @property
    def store(self) -> AuditStore:
        return self.ports.store

    @property
    def enhanced(self) -> EnhancedFindings:
        return self.ports.enhanced

    @property
    def announcer(self) -> Announcer:
        return self.ports.announcer

    def handle(self, event: AwsEvent) -> Outcome:
        if isinstance(event, EcrImageScanEvent | Inspector2ScanEvent):
            return self.on_scan(event)
        if isinstance(event, Inspector2FindingEvent):
            return self.on_finding(event)
        if isinstance(event, EcrImageActionEvent):
            return self.on_push(event)
        raise UnsupportedEventError(source=event.source, detail_type=event.detail_type)

    def on_scan(self, event: EcrImageScanEvent | Inspector2ScanEvent) -> Outcome:
        detail, trigger = event.detail, Trigger(event.detail_type, event.id)
        image, tags = ImageRef(detail.repository_name, detail.image_digest), detail.image_tags
        basic = isinstance(event, EcrImageScanEvent)
        if (not_a_result := self._not_a_result(image, tags, detail.scan_status, basic, trigger)) is not None:
            return not_a_result
        counts, scanned_at = detail.finding_severity_counts, lag.scan_time(event.time)
        if can_skip_findings_read(self.ctx.policy, image.repository, counts, zero_means_absent=basic):
            return self._record_clean(image, tags, counts.as_dict() if counts else {}, scanned_at, trigger)
        findings = self._listed_findings(image, basic)
        if findings is None:
            return self.actor.skipped(image, "scan findings are gone with the image", trigger)
        record = self.ports.store.get(image.repository, image.digest)
        if lag.older_than_awaited(record, scanned_at):  # the newer scan's re-checks read the findings anyway
            return self._superseded(image, record, "an older scan's result: the newer scan's findings are awaited")
        reported = lag.reported_counts(self.ctx.policy, image.repository, counts, basic)
        lagging = lag.missing(self.ctx.policy, image.repository, reported, findings, basic)
        if not lagging:  # the findings listed now decide, whichever scan the event is about
            return self._decide_read(image, tags, findings, trigger, record)
        check = lag.first_check(self.ctx, image, tags, reported, basic, trigger, scanned_at)
        return self._await_findings(check, lagging, findings, record, trigger)

    def _not_a_result(
        self, image: ImageRef, tags: list[str], status: str, basic: bool, trigger: Trigger
    ) -> Outcome | None:
        if basic and status != "COMPLETE":
            return self._scan_failed(image, tags, status, trigger)
        if not basic and status != "INITIAL_SCAN_COMPLETE":
            return Outcome.noop(image, f"scan status {status} is not a result")
        return None

    def _await_findings(
        self, check: FindingsCheck, lagging: dict[str, int], findings: list[Finding], record: ImageRecord | None,
        trigger: Trigger,
    ) -> Outcome:  # fmt: skip
        """Never pass what the scanner counted: wait for the findings, fail closed at the end."""
        image = ImageRef(check.repository, check.digest)
        outdated = lag.outdated(record, check.scanned_at)
        if outdated is not None:
            return self._superseded(image, record, outdated)
        if self.ports.checks is None:  # nothing can wait: decide now
            return self._window_closed(image, check, lagging, findings, record, trigger)
        return lag.wait(self.actor, check, lagging, record, trigger)

    def _superseded(self, image: ImageRef, record: ImageRecord | None, reason: str) -> Outcome:
        """A scan result that arrived late or twice: its counts say nothing the record does not know better."""
        metrics.add_metric(name="ScanResultsSuperseded", unit=MetricUnit.Count, value=1)
        return Outcome.noop(image, reason, record.status if record else None)

    def _listed_findings(self, image: ImageRef, basic: bool) -> list[Finding] | None:
        if basic:
            return self.ports.registry.basic_findings(image.repository, image.digest)
        return self.ports.enhanced.active_findings(image.repository, image.digest)

    def on_check(self, check: FindingsCheck | UnscannedCheck) -> Outcome:
        """A delayed check came due (or early: SQS delays 15 minutes at most; then it is sent on)."""
        image = ImageRef(check.repository, check.digest)
        if due_in(check, self.ctx.now()) > 1 and self.ports.checks is not None:
            self.ports.checks.schedule(check)
            return Outcome.noop(image, f"check due at {check.not_before:%Y-%m-%d %H:%M:%S}: sent on")
        if isinstance(check, UnscannedCheck):
            return unscanned.on_check(self.actor, check)
        return self._recheck_findings(image, check)

    def _recheck_findings(self, image: ImageRef, check: FindingsCheck) -> Outcome:
        trigger = Trigger("findings re-check", check.trigger_event_id)
        record = self.ports.store.get(image.repository, image.digest)
        if record is None or record.awaiting_findings is None or not lag.awaits(record, check):
            return self._not_awaited(image, check, record, trigger)
        findings = self._listed_findings(image, check.basic)
        if findings is None:
            return self.actor.skipped(image, "scan findings are gone with the image", trigger, record)
        lagging = lag.missing(self.ctx.policy, image.repository, check.counts, findings, check.basic)
        if not lagging:
            return self._decide(image, check.tags, findings, trigger, record)
        following = lag.next_check(self.ctx.policy, check, self.ctx.now())
        if following is None or self.ports.checks is None:
            return self._window_closed(image, check, lagging, findings, record, trigger)
        self.ports.checks.schedule(following)
        reason = f"{lag.describe(lagging)}; findings still not listed: re-check at {following.not_before:%H:%M:%S}"
        return Outcome(image.repository, image.digest, Action.FINDINGS_LAGGING, reason, record.status)

    def _not_awaited(
        self, image: ImageRef, check: FindingsCheck, record: ImageRecord | None, trigger: Trigger
    ) -> Outcome:
        if record is None:
            return Outcome.noop(image, "decided since: nothing to re-check")
        if record.awaiting_findings is not None:  # queued for an earlier scan: the newer one's own checks decide
            return self._superseded(image, record, "a re-check of an earlier scan: a newer scan is awaited")
        return self._settle_owed(image, check, record, trigger)

    def _settle_owed(self, image: ImageRef, check: FindingsCheck, record: ImageRecord, trigger: Trigger) -> Outcome:
        """Decided since. A decision that ends a wait may change nothing in ECR (findings_missing), so it owes its
        announcement only once sending failed; the re-check's retry is then the one run that can still send it."""
        case = Case(image, check.tags, transitions.decision_of(self.ctx, record), record, trigger)
        settled = outbox.settle_if_owed(self.actor, case)
        return settled or Outcome.noop(image, "decided since: nothing to re-check", record.status)

    def _window_closed(
        self, image: ImageRef, check: FindingsCheck, lagging: dict[str, int], findings: list[Finding],
        record: ImageRecord | None, trigger: Trigger,
    ) -> Outcome:  # fmt: skip
        if lag.uncounted_only(lagging):  # no count ever said more than is listed: the listed findings decide
            return self._decide_read(image, check.tags, findings, trigger, record)
        return lag.timed_out(self.actor, check, findings, record, trigger)

    def on_finding(self, event: Inspector2FindingEvent) -> Outcome:
        detail, trigger = event.detail, Trigger(event.detail_type, event.id)
        ecr_image = detail.ecr_image
        assert ecr_image is not None  # guaranteed by the contract
        image, tags = ImageRef(ecr_image.repository_name, ecr_image.image_hash), ecr_image.image_tags
        finding = from_inspector(detail)
        if detail.status == "ACTIVE":
            return self._finding_opened(image, tags, finding, trigger)
        record = self.ports.store.get(image.repository, image.digest)
        if record is None or record.status not in (*BLOCKED, ImageStatus.TAGGED, ImageStatus.AUDITED):
            return Outcome.noop(image, "a closed finding cannot make this image worse")
        findings = self.ports.enhanced.active_findings(image.repository, image.digest)
        remaining = [f for f in findings if f.id != finding.id]
        return self._decide(image, tags, remaining, trigger, record)

    def _finding_opened(self, image: ImageRef, tags: list[str], finding: Finding, trigger: Trigger) -> Outcome:
        alone = self._evaluate(image, tags, [finding])
        if alone.verdict is Verdict.PASS:
            return Outcome.noop(image, f"{finding.id} is below the thresholds")
        record = self.ports.store.get(image.repository, image.digest)
        if record and finding.id in record.counted_ids and record.verdict in (Verdict.BLOCK, alone.verdict):
            return Outcome.noop(image, "finding already behind the current decision", record.status)
        findings = self.ports.enhanced.active_findings(image.repository, image.digest)
        if finding.id not in {f.id for f in findings}:
            findings.append(finding)  # ListFindings may not show a brand-new finding yet
        return self._decide(image, tags, findings, trigger, record)

    def on_push(self, event: EcrImageActionEvent) -> Outcome:
        detail, trigger = event.detail, Trigger(event.detail_type, event.id)
        image, tag = ImageRef(detail.repository_name, detail.image_digest), detail.image_tag
        if detail.action_type != "PUSH" or detail.result != "SUCCESS":
            return Outcome.noop(image, f"{detail.action_type}/{detail.result} is not a push")
        if tag and self.ctx.policy.is_own_tag(tag, image.digest):
            metrics.add_metric(name="OwnEventsIgnored", unit=MetricUnit.Count, value=1)
            return Outcome.noop(image, f"own tag {tag}: ecr-warden's own push")
        if tag and self._own_recorded_tag(image, tag):  # a quarantine tag nobody could take first
            metrics.add_metric(name="OwnEventsIgnored", unit=MetricUnit.Count, value=1)
            return Outcome.noop(image, f"own tag {tag}: ecr-warden's own push (as recorded)")
        if detail.manifest_media_type in INDEX_MEDIA_TYPES:
            return multiarch.map_index(self.actor, image, trigger)
        if detail.artifact_media_type not in ARTIFACT_MEDIA_TYPES or unscanned.runnable(self.actor, image):
            unscanned.expect_scan(self.actor, image, [tag] if tag else [], event.time, trigger)
        if not tag:
            return Outcome.noop(image, "an untagged push deploys nothing")
        return self._tag_pushed(image, tag, trigger)

    def _own_recorded_tag(self, image: ImageRef, tag: str) -> bool:
        """Recognised from the record, never by name alone (anyone can push a name; only ecr-warden records it)."""
        if not self.ctx.policy.may_be_fallback_quarantine_tag(tag, image.digest):
            return False
        record = self.ports.store.get(image.repository, image.digest)
        return record is not None and tag in (record.quarantine_tag, record.marker_tag)

    def _tag_pushed(self, image: ImageRef, tag: str, trigger: Trigger) -> Outcome:
        """A tag reached this digest: keep it off a quarantined digest, and say so when the tag was one a blocked
        image gave up."""
        record = self.ports.store.get(image.repository, image.digest)
        reused = reuse.announce_tag_reuse(self.actor, image, tag, trigger)
        if record is not None and record.status is ImageStatus.QUARANTINED:
            return self.actor.enforce_quarantine(record, None, trigger)
        if reused is not None:
            return reused
        if record is None:
            return Outcome.noop(image, "nothing known against this image yet")
        return Outcome.noop(image, f"image is {record.status}", record.status)

    # -- deciding -------------------------------------------------------------------------------------------

    def _decide(
        self, image: ImageRef, tags: list[str], findings: list[Finding], trigger: Trigger,
        record: ImageRecord | None = None,
    ) -> Outcome:  # fmt: skip
        return self._decide_read(
            image, tags, findings, trigger, record or self.ports.store.get(image.repository, image.digest)
        )

    def _decide_read(
        self, image: ImageRef, tags: list[str], findings: list[Finding], trigger: Trigger, record: ImageRecord | None
    ) -> Outcome:
        """Decide with the record as read (None: there is none)."""
        known_tags = merge_tags(record.original_tags if record else [], tags)
        ctx = self.ctx
        decision = self._evaluate(image, known_tags, findings, ctx.audit_mode)
        return self.actor.apply(Case(image, tags, decision, record, trigger))

    def _evaluate(self, image: ImageRef, tags: list[str], findings: list[Finding], audit: bool = False) -> Decision:
        """The verdict. The exemptions in ecr-warden's own store (the admin function's) are read only when they could
        change it, a verdict other than PASS: one Query per repository, kept by the adapter for the invocation."""
        ctx = self.ctx
        decision = evaluate(ctx.policy, image, tags, findings, ctx.now(), audit)
        if decision.verdict is Verdict.PASS or self.ports.exemptions is None:
            return decision
        stored = self.ports.exemptions.active(image.repository, ctx.now())
        return evaluate(ctx.policy, image, tags, findings, ctx.now(), audit, stored) if stored else decision

    def _record_clean(
        self, image: ImageRef, tags: list[str], counts: dict[str, int], scanned_at: datetime, trigger: Trigger
    ) -> Outcome:
        """Clean by the event's own counts: one conditional write and one event, no read (unless the image is in a
        state the write may not replace, a wait for lagging findings among them)."""
        rule = self.ctx.policy.rule_for(image.repository)
        decision = Decision(
            verdict=Verdict.PASS,
            rule=rule.name if rule else None,
            block_method="quarantine",
            audit=self.ctx.audit_mode,
            reasons=[CLEAN_REASON],
            severity_counts=counts,
            counted=[],
            exempted=[],
            findings_total=sum(counts.values()),
        )
        record = ImageRecord(
            repository=image.repository,
            digest=image.digest,
            status=ImageStatus.PASSED,
            updated_at=self.ctx.now(),
            original_tags=tags,
            severity_counts=counts,
            verdict=Verdict.PASS.value,
            rule=decision.rule,
            fingerprint=decision.fingerprint,
            scanned_at=scanned_at,
        )
        entry = self.ctx.entry(Action.PASSED, ImageStatus.PASSED, CLEAN_REASON, trigger)
        previous = self.ports.store.record_pass(record, entry)
        if previous is None:  # recorded before, or in a state that needs the full path
            return self._clean_in_full(image, tags, decision, scanned_at, trigger)
        plan = Plan(record, record.version, Action.PASSED, ImageStatus(previous) if previous else None, CLEAN_REASON)
        detail = self.actor.executor.announce(plan, decision, trigger)
        return Outcome(image.repository, image.digest, Action.PASSED, CLEAN_REASON, record.status, detail)

    def _clean_in_full(
        self, image: ImageRef, tags: list[str], decision: Decision, scanned_at: datetime, trigger: Trigger
    ) -> Outcome:
        stored = self.ports.store.get(image.repository, image.digest)
        if lag.waits_for_newer(stored, scanned_at):  # fail closed: only a newer scan's clean result ends a wait
            return self._superseded(image, stored, "a clean result not newer than the scan whose findings are awaited")
        if stored is not None and (stored.scanned_at is None or stored.scanned_at < scanned_at):
            stored = stored.model_copy(update={"scanned_at": scanned_at})  # written with the decision
        return self.actor.apply(Case(image, tags, decision, stored, trigger))

    def _scan_failed(self, image: ImageRef, tags: list[str], status: str, trigger: Trigger) -> Outcome:
        policy = self.ctx.policy
        rule = policy.rule_for(image.repository)
        reason = f"scan {status}: policy says unscanned images are {policy.unscanned}ed"
        decision = Decision(
            verdict=Verdict.BLOCK if policy.unscanned == "block" and rule else Verdict.PASS,
            rule=rule.name if rule else None,
            block_method=rule.block_method if rule else "quarantine",
            audit=self.ctx.audit_mode or bool(rule and rule.audit),
            reasons=[reason],
            severity_counts={},
            counted=[],
            exempted=[],
            findings_total=0,
            note=f"scan {status}",
        )
        record = self.ports.store.get(image.repository, image.digest)
        case = Case(image, tags, decision, record, trigger)
        if decision.verdict is Verdict.BLOCK:
            return self.actor.apply(case)
        if record and record.fingerprint == decision.fingerprint and record.status is ImageStatus.SCAN_FAILED:
            return Outcome.noop(image, "scan failure already recorded", record.status)
        return self.actor.executor.run(transitions.scan_failed(self.ctx, case, reason), decision, trigger)
