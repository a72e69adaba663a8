"""Acting on a decision: read what the transition needs from ECR, take the step the state machine names, and
carry out its plan.

Safety properties, in the order the code enforces them:
- write-ahead: the decision and the image's original tags are stored before the image is touched;
- nothing is destroyed: the quarantine tag is added before deployable tags are removed, so the image keeps a tag;
- idempotent: a decision identical to the stored one (same fingerprint) does nothing but verify the image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ecr_warden.contracts.decision import Action
from ecr_warden.domain.images import ImageInfo, ImageRef
from ecr_warden.domain.records import ImageRecord, ImageStatus
from ecr_warden.gate import multiarch, outbox, restore, transitions
from ecr_warden.gate.context import Case, GateContext, Outcome, Trigger
from ecr_warden.gate.effects import Executor
from ecr_warden.gate.plan import Plan
from ecr_warden.gate.ports import Ports
from ecr_warden.gate.transitions import Step

AUTO_RELEASE = "all findings behind the block are closed (auto-release)"
UNTAGGED_PLATFORM_IMAGE = (
    "; untagged, and no index found that lists it yet: an index that does is blocked as soon as its push is mapped"
)


@dataclass
class Actor:
    ctx: GateContext
    ports: Ports
    executor: Executor = field(init=False)

    def __post_init__(self) -> None:
        self.executor = Executor(self.ctx, self.ports)

    def apply(self, case: Case) -> Outcome:
        if (settled := outbox.settle_if_owed(self, case)) is not None:
            return settled
        step = transitions.next_step(case, self.ctx.now(), self.ctx.policy.auto_release_on_close)
        if step in transitions.STANDING:
            action, reason = transitions.STANDING[step]
            return Outcome(case.image.repository, case.image.digest, action, reason, case.previous)
        if step in transitions.NOTES:
            plan = transitions.note(self.ctx, case, *transitions.note_of(step, case))
            return self._run(plan, case)
        handlers: dict[Step, Callable[[Case], Outcome]] = {
            Step.VERIFY_QUARANTINE: lambda c: self.verify_quarantine(_stored(c), c.trigger),
            Step.COMPLETE: lambda c: self.complete(_stored(c)),
            Step.AUTO_RELEASE: lambda c: restore.release(self, _stored(c), c.decision, AUTO_RELEASE, c.trigger, False),
            Step.BLOCK: self.block,
            Step.TAG: self.tag,
            Step.PASS: self.pass_,
        }
        return handlers[step](case)

    # -- blocking -------------------------------------------------------------------------------------------------

    def block(self, case: Case) -> Outcome:
        info = case.observed.info if case.observed else self.ports.registry.describe(*_ref(case))
        if info is None:
            return self.skipped(case.image, "image no longer exists", case.trigger, case.record)
        if info.is_artifact and not self._runnable(case):
            return Outcome.noop(case.image, f"{info.artifact_media_type} artifact: never acted on")
        deployable = [t for t in info.tags if not self.ctx.is_own_tag(t, case.image.digest, case.record)]
        if not info.is_index:
            through_index = multiarch.block_through_indexes(self, case, info, deployable)
            if through_index is not None:
                return through_index
        if case.decision.audit:
            archive = case.decision.block_method == "archive"
            action = Action.WOULD_ARCHIVE if archive else Action.WOULD_QUARANTINE
            return self._run(transitions.audited(self.ctx, case, deployable, action), case)
        if case.decision.block_method == "archive":
            return self._run(transitions.archive(self.ctx, case, deployable), case)
        remark = "" if deployable or info.is_index else UNTAGGED_PLATFORM_IMAGE
        return self.quarantine(case, info, deployable, remark)

    def _runnable(self, case: Case) -> bool:
        """An image that declares itself an artifact is taken at its word only if its layers agree (the pusher
        chooses the declared type; a scanner that found packages in it found a filesystem)."""
        manifest = case.observed.manifest if case.observed else self.ports.registry.manifest(*_ref(case))
        return manifest is None or manifest.has_filesystem_layers()

    def quarantine(self, case: Case, info: ImageInfo, deployable: list[str], remark: str = "") -> Outcome:
        manifest = case.observed.manifest if case.observed else self.ports.registry.manifest(*_ref(case))
        if manifest is None:
            return self.skipped(case.image, "image manifest no longer exists", case.trigger, case.record)
        plan = transitions.quarantine(self.ctx, case, info, manifest, deployable)
        return self._run(replace(plan, reason=plan.reason + remark) if remark else plan, case)

    def enforce_quarantine(
        self, record: ImageRecord, info: ImageInfo | None, trigger: Trigger, announce: bool = True
    ) -> Outcome:
        """A quarantined digest stays unpullable by tag: remove any deployable tag that reappeared."""
        image = ImageRef(record.repository, record.digest)
        info = info or self.ports.registry.describe(image.repository, image.digest)
        if info is None:
            return Outcome.noop(image, "quarantined image no longer exists", record.status)
        leftover = [t for t in info.tags if not self.ctx.is_own_tag(t, image.digest, record)]
        if not leftover:
            return Outcome.noop(image, "quarantine intact", record.status)
        if self.ctx.audit_mode:
            return Outcome(
                image.repository, image.digest, Action.WOULD_REMOVE_TAG, f"audit mode: would remove {leftover}",
                record.status,
            )  # fmt: skip
        quarantine_tag = record.quarantine_tag or self.ctx.policy.quarantine_tag(image.digest)
        manifest = None
        if quarantine_tag not in info.tags:
            manifest = self.ports.registry.manifest(image.repository, image.digest)
            if manifest is None:
                return Outcome.noop(image, "quarantined image no longer exists", record.status)
        plan = transitions.retag_blocked(self.ctx, record, info, manifest, leftover, trigger)
        return self.executor.run(
            replace(plan, announce=announce), transitions.decision_of(self.ctx, plan.record), trigger
        )

    def verify_quarantine(self, record: ImageRecord, trigger: Trigger) -> Outcome:
        """The same decision again (a duplicate, maybe running while the first delivery is half-way): recorded
        tags still on the image are the quarantine being finished, done quietly (the run that decided announces
        it); only a tag the record doesn't know is a re-tag worth announcing."""
        image = ImageRef(record.repository, record.digest)
        info = self.ports.registry.describe(image.repository, image.digest)
        if info is None:
            return Outcome.noop(image, "quarantined image no longer exists", record.status)
        leftover = [t for t in info.tags if not self.ctx.is_own_tag(t, image.digest, record)]
        if set(leftover) <= set(record.original_tags):
            outcome = self.enforce_quarantine(record, info, trigger, announce=False)
            return Outcome.noop(image, "quarantine finished" if leftover else outcome.reason, record.status)
        return self.enforce_quarantine(record, info, trigger)

    # -- tagging, passing, completing ----------------------------------------------------------------------------

    def tag(self, case: Case) -> Outcome:
        if case.decision.audit:
            return self._run(transitions.audited(self.ctx, case, case.tags, Action.WOULD_TAG), case)
        manifest = self.ports.registry.manifest(case.image.repository, case.image.digest)
        if manifest is None:
            return self.skipped(case.image, "image no longer exists", case.trigger, case.record)
        return self._run(transitions.tag(self.ctx, case, manifest), case)

    def pass_(self, case: Case) -> Outcome:
        record = case.record
        flagged = record and record.status is ImageStatus.TAGGED and not case.decision.audit
        marker = record.marker_tag if record and flagged else None
        marker_removed = marker is not None and self._remove_marker(case.image, marker)  # the flag no longer applies
        return self._run(transitions.passed(self.ctx, case, marker_removed), case)

    def _remove_marker(self, image: ImageRef, marker: str) -> bool:
        """False: kept (the image's last tag), and the record keeps it too (see restore.remove_own_tag)."""
        info = self.ports.registry.describe(image.repository, image.digest)
        return restore.remove_own_tag(self.ports.registry, image, marker, info)

    def complete(self, record: ImageRecord) -> Outcome:
        """Finish an archive or a marker tag whose ECR call failed after the record was written."""
        image = ImageRef(record.repository, record.digest)
        info = self.ports.registry.describe(image.repository, image.digest)
        if info is None:
            return Outcome.noop(image, "image no longer exists", record.status)
        if self.ctx.audit_mode:
            return Outcome.noop(image, "decision unchanged", record.status)
        if record.status is ImageStatus.ARCHIVED and info.status not in ("ARCHIVED", None):
            self.ports.registry.archive(image.repository, image.digest)
            return Outcome(image.repository, image.digest, Action.ARCHIVED, "completed the archive", record.status)
        if record.status is ImageStatus.TAGGED and record.marker_tag and record.marker_tag not in info.tags:
            manifest = self.ports.registry.manifest(image.repository, image.digest)
            if manifest is not None:
                self.ports.registry.add_tag(image.repository, image.digest, manifest, record.marker_tag)
                return Outcome(image.repository, image.digest, Action.TAGGED, "completed the marker tag", record.status)
        return Outcome.noop(image, "decision unchanged (duplicate or replayed event)", record.status)

    def skipped(self, image: ImageRef, reason: str, trigger: Trigger, record: ImageRecord | None = None) -> Outcome:
        """The image or repository is gone: record it once and stop (no error, no retry loop)."""
        record = record or self.ports.store.get(image.repository, image.digest)
        if record and record.status is ImageStatus.SKIPPED:
            return Outcome.noop(image, reason, record.status)
        plan = transitions.skipped(self.ctx, image, record, reason, trigger)
        return self.executor.run(plan, transitions.decision_of(self.ctx, plan.record), trigger)

    def _run(self, plan: Plan, case: Case) -> Outcome:
        return self.executor.run(plan, case.decision, case.trigger)


def _ref(case: Case) -> tuple[str, str]:
    return case.image.repository, case.image.digest


def _stored(case: Case) -> ImageRecord:
    assert case.record is not None  # the steps that read the record are only taken when there is one
    return case.record
