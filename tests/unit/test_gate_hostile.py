"""Hostile input to the scan gate's entry point (ecr_warden.gate.entry.process), 1,000+ generated cases: every
event type of events/ (and delayed-check messages) with fields missing, wrong types, huge strings, unicode, control
characters, invalid digests and ARNs, Slack markup, added fields, or not an event at all.

Each case ends in a typed answer, never an unhandled exception: `rejected` (parked once in the dead-letter queue),
`ignored` (another resource's event), or a decision that leaves ECR and the audit record consistent. An input
that is rejected or ignored makes no AWS write at all. The gate runs on the in-memory fakes (tests/fakes.py),
whose images carry the sample events' digests, so a valid mutation really acts.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecr_warden.contracts.checks import FindingsCheck, UnscannedCheck
from ecr_warden.contracts.decision import Action
from ecr_warden.domain.records import ImageStatus
from ecr_warden.gate import entry
from ecr_warden.settings import GateSettings
from tests.aws_faults import announcements
from tests.events import ACCOUNT, CRITICAL
from tests.fakes import NOW, Fakes
from tests.hostile import load_samples, mutated

EXAMPLES = 1000
REPOSITORIES = ("ses-base/api-server", "ses-base/worker", "ses-base/new-service", "ses-base/scratchpad",
                "docker-hub/library/nginx")  # fmt: skip
GATE_SAMPLES = [s for s in load_samples() if s.get("source") != "ecr-warden"]
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
SAMPLE_DIGESTS = sorted({d for s in GATE_SAMPLES for d in _DIGEST.findall(json.dumps(s))})
SETTINGS = GateSettings(audit_table_name="audit", decision_bus_name="bus", delayed_checks_queue_url="https://sqs/q")
STORE_WRITES = ("save", "record_pass", "link_child", "confirm_tag_reuse")


class RecordingDeadLetter:
    def __init__(self) -> None:
        self.parked: list[tuple[Any, Exception]] = []

    def send(self, event: Any, error: Exception, function_name: str) -> None:
        self.parked.append((event, error))


def fakes_with_the_sample_images() -> Fakes:
    """Every repository of the samples holds an image under each sample digest (the fakes compute digests from
    manifests, so each sample digest is mapped to an image's, see `remap`), with a CRITICAL finding."""
    fakes = Fakes()
    for repository in REPOSITORIES:
        fakes.registry.create_repository(repository)
        for n, digest in enumerate(SAMPLE_DIGESTS):
            pushed = fakes.registry.push(f"v{n}", seed=digest, repository=repository)
            fakes.enhanced.set(pushed, CRITICAL, repository=repository)
    return fakes


def _digest_map() -> dict[str, str]:
    fakes = Fakes()
    fakes.registry.create_repository()
    return {d: fakes.registry.push(None, seed=d) for d in SAMPLE_DIGESTS}


DIGESTS = _digest_map()


def remap(sample: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(sample)
    for original, pushed in DIGESTS.items():
        text = text.replace(original, pushed)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


SAMPLES = [remap(s) for s in GATE_SAMPLES]


def check_bodies() -> list[dict[str, Any]]:
    digest = next(iter(DIGESTS.values()))
    common = {"account": ACCOUNT, "region": "us-east-1", "repository": REPOSITORIES[0], "digest": digest,
              "tags": ["v0"], "not_before": NOW}  # fmt: skip
    findings = FindingsCheck(**common, counts={"CRITICAL": 1}, basic=False, first_seen=NOW - timedelta(minutes=1))
    unscanned = UnscannedCheck(**common, pushed_at=NOW - timedelta(hours=1))
    return [json.loads(c.model_dump_json()) for c in (findings, unscanned)]


def sqs_batch(body: Any) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    record = {"messageId": "m0", "receiptHandle": "r0", "body": text, "attributes": {}, "messageAttributes": {},
              "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
              "awsRegion": "us-east-1"}  # fmt: skip
    return {"Records": [record]}


HOSTILE_EVENTS = st.one_of(
    mutated(SAMPLES),
    mutated(SAMPLES),
    mutated(SAMPLES),
    mutated(check_bodies(), whole=False).map(sqs_batch),
    st.text(max_size=30).map(sqs_batch),
)


def writes(fakes: Fakes) -> int:
    return (
        fakes.registry.writes
        + sum(fakes.store.calls[m] for m in STORE_WRITES)
        + fakes.announcer.calls["publish"]
        + fakes.checks.calls["schedule"]
    )


def check_answer(raw: Any, fakes: Fakes, dead_letter: RecordingDeadLetter) -> dict[str, Any]:
    """Run the entry point on one input; the guarantees of a typed answer."""
    try:
        result = entry.process(raw, SETTINGS, lambda settings, account: fakes.gate(), dead_letter)
    except Exception as error:  # the point of the suite
        raise AssertionError(f"unhandled {type(error).__name__}: {error}") from error
    if "batchItemFailures" in result:  # a delayed check: rejected (parked once) or decided
        assert result["batchItemFailures"] == [], f"a delayed check failed unexpectedly: {result}"
        if dead_letter.parked:
            assert writes(fakes) == 0, "a rejected delayed check wrote to AWS"
        return result
    status = result.get("status")
    if status in ("rejected", "ignored"):
        assert writes(fakes) == 0, f"{status} input, yet {writes(fakes)} AWS write(s)"
        assert len(dead_letter.parked) == (1 if status == "rejected" else 0), "parked not exactly once"
        assert len(result["error" if status == "rejected" else "reason"]) < 2000, "an answer that echoes the input"
        return result
    assert result["action"] in {a.value for a in Action} | {"noop"}, result
    assert not dead_letter.parked
    check_consistent(fakes)
    return result


def check_consistent(fakes: Fakes) -> None:
    """Whatever a valid hostile event decided: every record agrees with ECR, and every image keeps a tag."""
    for (repository, digest), _item in fakes.store.items.items():
        record = fakes.store.require(digest, repository)
        if not fakes.registry.exists(digest, repository):
            continue
        tags = fakes.registry.tags(digest, repository)
        assert tags, f"{repository}@{digest} lost its last tag"
        settled = record.pending_announcement is None and not record.incomplete
        if settled and record.status is ImageStatus.QUARANTINED:
            assert record.quarantine_tag in tags
            assert set(tags) <= {record.quarantine_tag}, f"quarantined, yet ECR has {tags}"
    for repository, digest in {(d.repository, d.digest) for d in fakes.announcer.published}:
        announced = announcements(
            [d for d in fakes.announcer.published if (d.repository, d.digest) == (repository, digest)]
        )
        assert len(announced) == len(set(announced)), f"a duplicate announcement: {announced}"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])  # fmt: skip
@given(raw=HOSTILE_EVENTS)
def test_hostile_input_gets_a_typed_answer_and_invalid_input_writes_nothing(raw: Any) -> None:
    check_answer(raw, fakes_with_the_sample_images(), RecordingDeadLetter())


@pytest.mark.parametrize("sample", range(len(SAMPLES)))
def test_every_sample_as_it_is_gets_a_typed_answer(sample: int) -> None:
    check_answer(SAMPLES[sample], fakes_with_the_sample_images(), RecordingDeadLetter())


def test_a_critical_sample_really_quarantines_so_valid_mutations_can_act() -> None:
    [critical] = [s for s in SAMPLES if s["detail-type"] == "Inspector2 Scan" and "TOTAL" in json.dumps(s)
                  and s["detail"].get("finding-severity-counts", {}).get("CRITICAL")][:1]  # fmt: skip
    fakes = fakes_with_the_sample_images()
    assert check_answer(critical, fakes, RecordingDeadLetter())["action"] in ("quarantined", "findings_lagging")
    assert writes(fakes) > 0


@pytest.mark.parametrize("moment", [10**20, -(10**20), 2**70, float("nan"), float("inf")])
def test_an_epoch_time_out_of_any_calendar_is_a_typed_rejection(moment: float) -> None:
    """Regression: datetime.fromtimestamp raised OverflowError / OSError / ValueError out of the parser, so the
    gate crashed (retried twice, then the on-failure queue) instead of rejecting the event once."""
    raw = dict(SAMPLES[0], time=moment)
    dead_letter = RecordingDeadLetter()
    result = check_answer(raw, fakes_with_the_sample_images(), dead_letter)
    assert result["status"] == "rejected"
    assert "time" in result["error"]


def test_a_huge_detail_type_is_not_echoed_whole() -> None:
    """Regression: UnsupportedEventError quoted the detail-type whole (up to 256 KB) in the log line and the
    dead-letter message, which then could not be sent (SQS's limit is 256 KB)."""
    raw = dict(SAMPLES[0], **{"detail-type": "A" * 250_000})
    result = check_answer(raw, fakes_with_the_sample_images(), RecordingDeadLetter())
    assert result["status"] == "rejected"
    assert len(result["error"]) < 600


# -- the test of the tests ---------------------------------------------------------------------------------------


def test_the_checker_catches_a_write_on_rejected_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break "0 AWS writes on invalid input": the rejection path also schedules a delayed check."""
    from ecr_warden import runtime

    reject = runtime.reject

    def writing_reject(raw: Any, error: Any, settings: Any, dead_letter: Any = None) -> dict[str, Any]:
        fakes.checks.calls["schedule"] += 1  # as if it wrote to SQS before parking
        return reject(raw, error, settings, dead_letter)

    monkeypatch.setattr(entry, "reject", writing_reject)
    fakes = fakes_with_the_sample_images()
    bad = dict(SAMPLES[0], detail="not a detail")
    with pytest.raises(AssertionError, match="AWS write"):
        check_answer(bad, fakes, RecordingDeadLetter())


def test_the_checker_catches_an_unhandled_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecr_warden.contracts import parsing

    def crash(raw: Any) -> Any:
        raise KeyError("detail")  # a parser that indexes instead of validating

    monkeypatch.setattr(entry, "parse_aws_event", crash)
    with pytest.raises(AssertionError, match="unhandled KeyError"):
        check_answer(SAMPLES[0], fakes_with_the_sample_images(), RecordingDeadLetter())
    assert parsing.parse_aws_event is not crash
