"""The unscanned check says only what is true: an image that was scanned is decided by its findings, one still
being scanned is looked at again later (within a bound, never by sleeping), a blocked unscanned image reaches every
Slack route, its announcement goes out once even if the first send fails, and the coverage lookup names the
image in its own partition."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from ecr_warden.adapters.decision_bus import AnnounceError
from ecr_warden.contracts.checks import UnscannedCheck
from ecr_warden.contracts.decision import DecisionDetail
from ecr_warden.domain.images import ImageInfo
from ecr_warden.domain.records import ImageStatus
from ecr_warden.gate import unscanned
from ecr_warden.gate.context import GateContext, Outcome
from ecr_warden.gate.dispatch import ScanGate
from ecr_warden.notify import message
from ecr_warden.policy.model import Policy
from tests.fakes import REPOSITORY, Fakes
from tests.notify_fakes import NotifierFakes
from tests.unit.test_gate_with_fakes import CRITICAL, inspector_scan, policy, push, q

LAGGING = {"CRITICAL": 2, "HIGH": 0, "MEDIUM": 0, "TOTAL": 2}
CLEAN = {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0}
STRICT = policy(unscanned="block")


def _pushed(fakes: Fakes, pol: Policy | None = None) -> str:
    """An image pushed and its push handled: the unscanned check is queued."""
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1.3.0", "unscanned")
    pushed = push(digest, "v1.3.0")
    fakes.gate(pol).handle(pushed.model_copy(update={"time": fakes.clock.now}))  # pushed now
    return digest


def _take(fakes: Fakes) -> UnscannedCheck:
    check = fakes.checks.take()
    assert isinstance(check, UnscannedCheck)
    fakes.clock.now = max(fakes.clock.now, check.not_before)
    return check


def _deliver(fakes: Fakes, pol: Policy | None = None) -> Outcome:
    return fakes.gate(pol).on_check(_take(fakes))


def _ecr_scan_status(fakes: Fakes, status: str, description: str | None = None) -> None:
    """DescribeImages reports imageScanStatus (the fake registry leaves it out)."""
    describe = fakes.registry.describe

    def with_status(repository: str, digest: str) -> ImageInfo | None:
        info = describe(repository, digest)
        return replace(info, scan_status=status, scan_status_description=description) if info else None

    fakes.registry.describe = with_status  # type: ignore[method-assign]


# -- 4: an announcement that failed is sent by the retry, once --------------------------------------------------


@pytest.mark.parametrize(("pol", "action"), [(None, "unscanned"), (STRICT, "quarantined")])
def test_a_failed_unscanned_announcement_is_sent_by_the_retry_once(
    fakes: Fakes, pol: Policy | None, action: str
) -> None:
    digest = _pushed(fakes, pol)
    check = _take(fakes)
    fakes.announcer.reject()
    with pytest.raises(AnnounceError):
        fakes.gate(pol).on_check(check)
    assert fakes.announcer.published == []

    retried = fakes.gate(pol).on_check(check)  # SQS delivers the check again

    assert retried.action == action
    assert fakes.announcer.actions() == [action]
    assert fakes.announcer.last().reasons[0].startswith("no scan result 30 min after the push")
    record = fakes.store.require(digest)
    assert record.pending_announcement is None
    assert record.incomplete is None
    assert fakes.gate(pol).on_check(check).action == "noop"  # a third delivery
    assert fakes.announcer.actions() == [action]


# -- 6: a blocked unscanned image reaches every route ------------------------------------------------------------


def _unscanned_quarantine(fakes: Fakes) -> DecisionDetail:
    _pushed(fakes, STRICT)
    assert _deliver(fakes, STRICT).action == "quarantined"
    return fakes.announcer.last()


def test_an_unscanned_quarantine_reaches_routes_with_a_min_severity(fakes: Fakes) -> None:
    detail = _unscanned_quarantine(fakes)
    routes = [
        {"name": "critical-only", "min_severity": "CRITICAL"},
        {"name": "everything"},
    ]
    notify = NotifierFakes()
    notifier = notify.notifier(policy(notifications={"routes": routes}))

    assert notifier.on_decision(detail) == "notified"
    assert sorted(route for route, _ in notify.slack.posted) == ["critical-only", "everything"]


def test_an_unscanned_quarantine_does_not_claim_no_findings(fakes: Fakes) -> None:
    detail = _unscanned_quarantine(fakes)
    text = message.plain_text(detail)
    assert "no findings" not in text
    assert "severity unknown" in text


def test_a_quarantine_below_a_routes_min_severity_still_skips_it() -> None:
    """The fix lets unrated blocks through, not every block: a HIGH quarantine stays off a CRITICAL route."""
    fakes = Fakes()
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "high")
    high = [f.model_copy(update={"severity": "HIGH"}) for f in CRITICAL]
    fakes.enhanced.set(digest, high)
    fakes.gate(policy(rules=[{"name": "r", "block_at": "HIGH"}])).handle(inspector_scan(digest, ["v1"], {"HIGH": 1}))
    detail = fakes.announcer.last()
    assert detail.action == "quarantined"
    notify = NotifierFakes()
    notifier = notify.notifier(policy(notifications={"routes": [{"name": "c", "min_severity": "CRITICAL"}]}))
    assert notifier.routes_for(detail) == []


# -- 7: evidence that the image was scanned, or is being scanned --------------------------------------------------


def test_an_image_inspector_scanned_is_decided_by_its_findings(fakes: Fakes) -> None:
    digest = _pushed(fakes, STRICT)
    fakes.enhanced.covered[(REPOSITORY, digest)] = ("ACTIVE", "SUCCESSFUL")  # scanned; its event is late or lost

    outcome = _deliver(fakes, STRICT)

    assert outcome.action == "passed"
    assert fakes.store.require(digest).status is ImageStatus.PASSED
    assert fakes.registry.tags(digest) == ["v1.3.0"]
    assert "unscanned" not in fakes.announcer.actions()
    late = fakes.gate(STRICT).handle(inspector_scan(digest, ["v1.3.0"], CLEAN))
    assert late.action == "noop"  # the same decision
    assert fakes.registry.tags(digest) == ["v1.3.0"]


def test_an_image_inspector_scanned_with_critical_findings_is_blocked_for_them(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    fakes.enhanced.set(digest, list(CRITICAL))
    fakes.enhanced.covered[(REPOSITORY, digest)] = ("ACTIVE", "SUCCESSFUL")

    assert _deliver(fakes).action == "quarantined"  # unscanned: allow, yet the findings block it
    decision = fakes.announcer.last()
    assert decision.severity_counts.get("CRITICAL") == 1
    assert not decision.reasons[0].startswith("no scan result")
    assert fakes.registry.tags(digest) == [q(digest)]


def test_an_image_ecr_scanned_is_decided_by_its_basic_findings(fakes: Fakes) -> None:
    digest = _pushed(fakes, STRICT)
    fakes.registry.set_scan(digest, list(CRITICAL))
    _ecr_scan_status(fakes, "COMPLETE", "The scan was completed successfully.")

    assert _deliver(fakes, STRICT).action == "quarantined"
    assert fakes.announcer.last().severity_counts.get("CRITICAL") == 1
    assert fakes.store.require(digest).status is ImageStatus.QUARANTINED


@pytest.mark.parametrize(
    ("coverage", "ecr"),
    [
        (("ACTIVE", "PENDING_INITIAL_SCAN"), None),
        (("ACTIVE", "SCAN_IN_PROGRESS"), None),
        (None, "IN_PROGRESS"),
        (None, "PENDING"),
    ],
)
def test_a_scan_still_pending_is_looked_at_again_not_announced(
    fakes: Fakes, coverage: tuple[str, str] | None, ecr: str | None
) -> None:
    digest = _pushed(fakes, STRICT)
    if coverage:
        fakes.enhanced.covered[(REPOSITORY, digest)] = coverage
    if ecr:
        _ecr_scan_status(fakes, ecr)

    outcome = _deliver(fakes, STRICT)

    assert outcome.action == "noop"
    assert "scan pending" in outcome.reason
    assert fakes.announcer.published == []
    assert fakes.registry.tags(digest) == ["v1.3.0"]
    [again] = fakes.checks.scheduled
    assert isinstance(again, UnscannedCheck)
    assert again.not_before - fakes.clock.now == timedelta(minutes=30)


def test_a_pending_scan_that_completes_clean_leaves_the_image_passed(fakes: Fakes) -> None:
    digest = _pushed(fakes, STRICT)
    fakes.enhanced.covered[(REPOSITORY, digest)] = ("ACTIVE", "PENDING_INITIAL_SCAN")
    assert _deliver(fakes, STRICT).action == "noop"

    fakes.gate(STRICT).handle(inspector_scan(digest, ["v1.3.0"], CLEAN))
    fakes.enhanced.covered[(REPOSITORY, digest)] = ("ACTIVE", "SUCCESSFUL")

    assert _deliver(fakes, STRICT).action == "noop"
    assert fakes.store.require(digest).status is ImageStatus.PASSED
    assert fakes.registry.tags(digest) == ["v1.3.0"]
    assert fakes.announcer.actions() == ["passed"]


def test_a_scan_pending_past_the_bound_is_announced_unscanned(fakes: Fakes) -> None:
    digest = _pushed(fakes, STRICT)
    fakes.enhanced.covered[(REPOSITORY, digest)] = ("ACTIVE", "PENDING_INITIAL_SCAN")
    outcomes = []
    while fakes.checks.scheduled:
        outcomes.append(_deliver(fakes, STRICT).action.value)
        assert len(outcomes) < 10, "the wait must end"

    assert outcomes[-1] == "quarantined"
    assert set(outcomes[:-1]) == {"noop"}
    reason = fakes.announcer.last().reasons[0]
    assert reason.startswith(f"no scan result {30 * unscanned.PENDING_WINDOWS} min after the push")
    assert "scan still pending" in reason
    assert "Inspector: ACTIVE (PENDING_INITIAL_SCAN)" in reason
    assert fakes.announcer.actions() == ["quarantined"]


def test_a_scan_that_failed_is_announced_unscanned_with_its_reason(fakes: Fakes) -> None:
    digest = _pushed(fakes)
    _ecr_scan_status(fakes, "UNSUPPORTED_IMAGE", "The operating system and/or package manager are not supported.")
    assert _deliver(fakes).action == "unscanned"
    assert "ECR scan status UNSUPPORTED_IMAGE" in fakes.announcer.last().reasons[0]
    assert fakes.store.require(digest).status is ImageStatus.UNSCANNED


def test_an_image_whose_findings_lagged_is_never_called_unscanned(fakes: Fakes) -> None:
    """Alert mode: the lag chain ends in findings_missing and leaves the record PENDING; the scan result came."""
    alert = policy(findings_lag={"on_timeout": "alert"})
    digest = _pushed(fakes, alert)
    held = fakes.checks.take()  # due 30 min after the push, after the lag window closed
    fakes.gate(alert).handle(inspector_scan(digest, ["v1.3.0"], LAGGING))
    while fakes.checks.scheduled:
        check = fakes.checks.take()
        fakes.clock.now = max(fakes.clock.now, check.not_before)
        fakes.gate(alert).on_check(check)
    assert fakes.announcer.actions() == ["findings_missing"]
    fakes.clock.now = max(fakes.clock.now, held.not_before)

    assert fakes.gate(alert).on_check(held).action == "noop"
    assert fakes.announcer.actions() == ["findings_missing"]
    assert fakes.store.require(digest).status is not ImageStatus.UNSCANNED


# -- 10: the coverage lookup names the image in its partition -----------------------------------------------------


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")]
)
def test_the_coverage_lookup_uses_the_regions_partition(fakes: Fakes, region: str, partition: str) -> None:
    _pushed(fakes)
    asked: list[str] = []
    coverage = fakes.enhanced.coverage

    def recording(repository: str, digest_: str, repository_arn: str) -> tuple[str, str | None] | None:
        asked.append(repository_arn)
        return coverage(repository, digest_, repository_arn)

    fakes.enhanced.coverage = recording  # type: ignore[method-assign]
    base = fakes.gate().ctx
    ctx = GateContext(base.policy, base.mode, base.account, region, base.environment, fakes.clock)
    check = _take(fakes)
    ScanGate(ctx, fakes.ports).on_check(check)

    assert asked == [f"arn:{partition}:ecr:{region}:{base.account}:repository/{REPOSITORY}"]
