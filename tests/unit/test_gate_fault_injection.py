"""Fault injection: a throttle, 5xx or timeout at exactly one AWS call of a quarantine, a flag, an archive or a
release, then Lambda's retry behaviour (the same event up to twice more). The end state is consistent every
time: done exactly once and announced exactly once, or (when every attempt failed) untouched or resumable —
never tags lost, never a record that claims what ECR doesn't have, never a duplicate announcement."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ecr_warden.actions import find
from ecr_warden.domain.records import ImageStatus
from ecr_warden.policy.load import parse_policy
from tests.events import CRITICAL, inspector_scan
from tests.fakes import REPOSITORY, FakeAwsError, Fakes

LAMBDA_ATTEMPTS = 3  # the first invocation and Lambda's two asynchronous retries
ERRORS = {
    "throttling": lambda: FakeAwsError("ThrottlingException", "Rate exceeded"),
    "server": lambda: FakeAwsError("InternalServerError", "injected 500"),
    "timeout": lambda: TimeoutError("read timed out"),
}
COUNTS = {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2}


def _calls_of(fakes: Fakes, run: Callable[[], Any]) -> list[tuple[str, str]]:
    """Every (port, method) call a clean run makes, in order: the points to inject at."""
    run()
    seen = []
    for port_name in ("registry", "enhanced", "store", "announcer", "checks"):
        port = getattr(fakes, port_name)
        seen.extend((port_name, method) for method in port.calls)
    return sorted(set(seen))


def _with_retries(run: Callable[[], Any]) -> Exception | None:
    last: Exception | None = None
    for _ in range(LAMBDA_ATTEMPTS):
        try:
            run()
            return None
        except Exception as exc:  # what Lambda sees: the invocation failed, it retries
            last = exc
    return last


def _quarantine_setup() -> tuple[Fakes, Callable[[], Any], str]:
    fakes = Fakes()
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(digest, CRITICAL)
    event = inspector_scan(digest, ["v1"], COUNTS)
    return fakes, lambda: fakes.gate().handle(event), digest


QUARANTINE_POINTS = _calls_of(*_quarantine_setup()[:2])


@pytest.mark.parametrize("error", sorted(ERRORS))
@pytest.mark.parametrize(("port", "method"), QUARANTINE_POINTS)
def test_a_quarantine_survives_a_fault_at_any_call(port: str, method: str, error: str) -> None:
    fakes, run, digest = _quarantine_setup()
    getattr(fakes, port).fail(method, ERRORS[error]())

    assert _with_retries(run) is None  # one fault, three attempts: it always completes

    assert fakes.registry.tags(digest) == ["quarantined-" + digest[7:19]]
    record = fakes.store.require(digest)
    assert record.status is ImageStatus.QUARANTINED
    assert record.original_tags == ["v1"]
    assert record.pending_announcement is None
    assert fakes.announcer.actions() == ["quarantined"]  # exactly once, as itself


@pytest.mark.parametrize(("port", "method"), QUARANTINE_POINTS)
def test_a_quarantine_that_never_gets_through_leaves_a_consistent_record(port: str, method: str) -> None:
    fakes, run, digest = _quarantine_setup()
    getattr(fakes, port).fail(method, ERRORS["throttling"](), times=LAMBDA_ATTEMPTS)

    error = _with_retries(run)  # every attempt fails at the same call: the event goes to the DLQ

    tags = fakes.registry.tags(digest)
    record = fakes.store.record(digest)
    assert tags, "the image lost its last tag"
    if error is None:  # the failing call was not needed on the retries' path
        assert fakes.announcer.actions() == ["quarantined"]
        return
    assert fakes.announcer.actions() in ([], ["quarantined"])
    if record is None or record.status is not ImageStatus.QUARANTINED:
        assert tags == ["v1"]  # untouched
    else:
        assert set(tags) <= {"v1", record.quarantine_tag}  # half-way, recorded as such: a redrive finishes it
        assert "v1" in record.original_tags


def _flag_setup() -> tuple[Fakes, Callable[[], Any], str]:
    fakes = Fakes()
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "flag")
    fakes.enhanced.set(digest, [CRITICAL[1]])
    policy = parse_policy(json.dumps({"rules": [{"name": "r", "tag_at": "HIGH"}]}))
    event = inspector_scan(digest, ["v1"], {"CRITICAL": 0, "HIGH": 1})
    return fakes, lambda: fakes.gate(policy).handle(event), digest


@pytest.mark.parametrize(("port", "method"), _calls_of(*_flag_setup()[:2]))
def test_a_flag_survives_a_fault_at_any_call(port: str, method: str) -> None:
    fakes, run, digest = _flag_setup()
    getattr(fakes, port).fail(method, ERRORS["throttling"]())
    assert _with_retries(run) is None
    record = fakes.store.require(digest)
    assert record.status is ImageStatus.TAGGED
    assert sorted(fakes.registry.tags(digest)) == sorted(["v1", str(record.marker_tag)])
    assert fakes.announcer.actions() == ["tagged"]


def _release_setup() -> tuple[Fakes, Callable[[], Any], str]:
    fakes, run, digest = _quarantine_setup()
    run()
    fakes.announcer.clear()
    request = {"repository": REPOSITORY, "digest": digest, "reason": "accepted", "by": "alice"}
    return fakes, lambda: find("release").invoke(request, fakes.gate().actor), digest


@pytest.mark.parametrize(("port", "method"), _calls_of(*_release_setup()[:2]))
def test_a_release_survives_a_fault_at_any_call(port: str, method: str) -> None:
    fakes, run, digest = _release_setup()
    fakes.reset_calls()
    getattr(fakes, port).fail(method, ERRORS["throttling"]())
    assert _with_retries(run) is None  # an admin runs it again: it finishes what is undone
    assert fakes.registry.tags(digest) == ["v1"]
    assert fakes.store.require(digest).status is ImageStatus.RELEASED
    assert fakes.announcer.actions() in (["released"], ["released", "released"])
