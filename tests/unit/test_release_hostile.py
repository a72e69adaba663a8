"""Hostile admin payloads to the remediation action `release` (actions.find("release").invoke), 1,000+ generated
cases: the real request shape with fields missing, wrong types, extra fields, huge strings, unicode, control
characters, invalid digests and repository names, Slack markup in the reason and the admin's name.

Each case ends in a typed answer, never an unhandled exception: a PermanentError (EventValidationError for a bad
payload, ReleaseError for an image ecr-warden does not hold) with no AWS write at all, or a correct release:
exactly the recorded tags back, the record RELEASED, announced once.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecr_warden.actions import find
from ecr_warden.domain.records import ImageStatus
from ecr_warden.errors import PermanentError
from tests.events import CRITICAL, inspector_scan
from tests.fakes import REPOSITORY, Fakes
from tests.hostile import SLACK_MARKUP, WEIRD_TEXT, mutated

EXAMPLES = 1000
STORE_WRITES = ("save", "record_pass", "link_child", "confirm_tag_reuse")


def quarantined() -> tuple[Fakes, str]:
    fakes = Fakes()
    fakes.registry.create_repository()
    digest = fakes.registry.push("v1", "bad")
    fakes.enhanced.set(digest, CRITICAL)
    fakes.gate().handle(inspector_scan(digest, ["v1"], {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2}))
    fakes.reset_calls()
    fakes.announcer.clear()
    return fakes, digest


QUARANTINED, DIGEST = quarantined()


def fresh() -> tuple[Fakes, str]:
    """A copy of the quarantined image's world (quicker than quarantining it again for every example)."""
    return copy.deepcopy(QUARANTINED), DIGEST


REQUEST = {"repository": REPOSITORY, "digest": DIGEST, "reason": "false positive, SEC-42", "by": "alice"}
TEXT = st.one_of(st.sampled_from(SLACK_MARKUP + WEIRD_TEXT), st.text(min_size=1, max_size=50),
                 st.sampled_from([999, 1000, 1001, 100_000]).map(lambda n: "r" * n))  # fmt: skip


@st.composite
def admin_texts(draw: st.DrawFn) -> dict[str, Any]:
    """A request that may well be valid: hostile text where an admin types free text."""
    return dict(REQUEST, reason=draw(TEXT), by=draw(TEXT))


PAYLOADS = st.one_of(mutated([REQUEST]), mutated([REQUEST]), admin_texts())


def writes(fakes: Fakes) -> int:
    return fakes.registry.writes + sum(fakes.store.calls[m] for m in STORE_WRITES) + fakes.announcer.calls["publish"]


def check_answer(payload: Any, fakes: Fakes, digest: str) -> str:
    rejected: PermanentError | None = None
    try:
        outcome = find("release").invoke(payload, fakes.gate().actor)
    except PermanentError as error:  # a typed rejection: nothing changed
        rejected = error
    except Exception as error:  # the point of the suite
        raise AssertionError(f"unhandled {type(error).__name__}: {error}") from error
    if rejected is not None:
        assert writes(fakes) == 0, f"{type(rejected).__name__}, yet {writes(fakes)} AWS write(s)"
        assert len(str(rejected)) < 2000, "an error that echoes the input"
        return type(rejected).__name__
    assert outcome.action.value == "released", outcome
    assert fakes.registry.tags(digest) == ["v1"], "not exactly the recorded tags"
    assert fakes.store.require(digest).status is ImageStatus.RELEASED
    assert fakes.announcer.actions() == ["released"], "not announced exactly once"
    return outcome.action.value


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.data_too_large])  # fmt: skip
@given(payload=PAYLOADS)
def test_hostile_release_requests_get_a_typed_answer_and_invalid_ones_write_nothing(payload: Any) -> None:
    fakes, digest = fresh()
    check_answer(payload, fakes, digest)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, "released"),
        ({"digest": "sha256:" + "0" * 64}, "ReleaseError"),  # an image ecr-warden holds no record of
        ({"reason": ""}, "EventValidationError"),
        ({"reason": "r" * 1001}, "EventValidationError"),
        ({"extra": "field"}, "EventValidationError"),
        ({"reason": "<!channel> <http://evil.example|click>"}, "released"),
    ],
)
def test_known_requests(change: dict[str, Any], expected: str) -> None:
    fakes, digest = quarantined()
    assert check_answer(dict(REQUEST, **change), fakes, digest) == expected


# -- the test of the tests ---------------------------------------------------------------------------------------


def test_the_checker_catches_a_release_that_acts_before_validating(monkeypatch: pytest.MonkeyPatch) -> None:
    """Break "0 AWS writes on invalid input": the action reads the record and writes it before validating."""
    from ecr_warden.actions.registry import RemediationAction

    invoke = RemediationAction.invoke

    def act_first(self: Any, payload: Any, gate: Any) -> Any:
        record = gate.ports.store.get(REPOSITORY, DIGEST)
        gate.ports.store.save(record, record.version)  # a write before the payload is checked
        return invoke(self, payload, gate)

    monkeypatch.setattr(RemediationAction, "invoke", act_first)
    fakes, digest = quarantined()
    with pytest.raises(AssertionError, match="AWS write"):
        check_answer(dict(REQUEST, reason=""), fakes, digest)
