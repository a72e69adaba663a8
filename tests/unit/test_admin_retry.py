"""An admin request that fails at any one of its AWS calls leaves a state that Lambda's retry of the same invocation
(the same request id) completes: quarantine and exempt, a fault at each call in turn. Afterwards ECR, the record,
the exemption store, the admin log and the announcements agree, and nothing was done twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ecr_warden.domain.records import ImageStatus
from tests.fakes import REPOSITORY, FakeAwsError
from tests.fakes_exemptions import Admin

QUARANTINE = {"action": "quarantine", "repository": REPOSITORY, "tag": "v2", "reason": "leaked key", "by": "carol"}
EXEMPT = {
    "action": "exempt", "operation": "add", "repository": REPOSITORY, "cve": "CVE-2024-6387", "expires": "2026-11-30",
    "reason": "sshd never starts", "approver": "security@example.com", "by": "alice",
}  # fmt: skip
REQUEST_ID = "0f6a3c1e-retry"


def _ports(admin: Admin) -> dict[str, Any]:
    fakes = admin.fakes
    return {
        "registry": fakes.registry,
        "store": fakes.store,
        "announcer": fakes.announcer,
        "exemptions": admin.exemptions,
        "scans": admin.scans,
    }


METHODS = {
    "registry": ("describe", "manifest", "add_tag", "remove_tags", "digest_of"),
    "store": ("get", "save"),
    "announcer": ("publish",),
    "exemptions": ("get", "add", "record", "query", "logged"),
    "scans": ("repository_arn",),
}


def _instrument(admin: Admin, on_call: Callable[[str, str, int], None]) -> None:
    """Every port call of interest goes through `on_call(port, method, occurrence)` first."""
    for name, port in _ports(admin).items():
        for method in METHODS[name]:
            original = getattr(port, method)
            counter = {"n": 0}

            def wrapper(*args: Any, _o: Any = original, _p: str = name, _m: str = method, _c: Any = counter) -> Any:
                _c["n"] += 1
                on_call(_p, _m, _c["n"])
                return _o(*args)

            setattr(port, method, wrapper)


def _calls(set_up: Callable[[Admin], None], payload: dict[str, Any]) -> list[tuple[str, str, int]]:
    """The AWS calls a clean run makes, in order."""
    admin = Admin()
    set_up(admin)
    seen: list[tuple[str, str, int]] = []
    _instrument(admin, lambda p, m, n: seen.append((p, m, n)))
    assert admin.invoke(payload, REQUEST_ID)["ok"] is True
    return seen


def _image(admin: Admin) -> None:
    admin.fakes.registry.create_repository()
    admin.fakes.registry.push("v2", "suspicious")


def _failing_once(admin: Admin, call: tuple[str, str, int]) -> None:
    armed = {"on": True}

    def fail(port: str, method: str, occurrence: int) -> None:
        if armed["on"] and (port, method, occurrence) == call:
            armed["on"] = False
            raise FakeAwsError("InternalServerError", f"{port}.{method} #{occurrence} (injected)")

    _instrument(admin, fail)


QUARANTINE_CALLS = _calls(_image, QUARANTINE)


@pytest.mark.parametrize("call", QUARANTINE_CALLS, ids=[f"{p}.{m}#{n}" for p, m, n in QUARANTINE_CALLS])
def test_quarantine_fault_at_each_call_then_lambdas_retry(call: tuple[str, str, int]) -> None:
    admin = Admin()
    _image(admin)
    digest = admin.fakes.registry.tagged("v2")
    assert digest is not None
    _failing_once(admin, call)
    with pytest.raises(FakeAwsError):
        admin.invoke(QUARANTINE, REQUEST_ID)
    admin.fakes.clock.advance(seconds=61)  # Lambda retries a failed invocation a minute or more later
    result = admin.invoke(QUARANTINE, REQUEST_ID)  # ... under the same request id
    assert result["ok"] is True, result
    assert result["result"]["outcome"] == "quarantined", result
    assert admin.fakes.registry.tags(digest) == ["quarantined-" + digest[7:19]]
    record = admin.fakes.store.require(digest)
    assert (record.status, record.original_tags) == (ImageStatus.QUARANTINED, ["v2"])
    assert (record.pending_announcement, record.incomplete) == (None, None)
    announced = [d for d in admin.fakes.announcer.published if d.digest == digest]
    assert {d.action.value for d in announced} == {"quarantined"}
    assert len({d.decision_id for d in announced}) == 1  # announced once (a resend keeps its id)
    assert announced[0].reasons == ["quarantined by carol (unverified): leaked key"]
    assert list(admin.exemptions.log) == [REQUEST_ID]


def _repository(admin: Admin) -> None:
    admin.fakes.registry.create_repository()


EXEMPT_CALLS = _calls(_repository, EXEMPT)


@pytest.mark.parametrize("lost", [False, True], ids=["failed", "answer-lost"])
@pytest.mark.parametrize("call", EXEMPT_CALLS, ids=[f"{p}.{m}#{n}" for p, m, n in EXEMPT_CALLS])
def test_exempt_fault_at_each_call_then_lambdas_retry(call: tuple[str, str, int], lost: bool) -> None:
    admin = Admin()
    _repository(admin)
    if lost:
        if call[:2] != ("exemptions", "add"):
            pytest.skip("only a write can lose its answer")
        admin.exemptions.lose("add")
    else:
        _failing_once(admin, call)
    with pytest.raises(FakeAwsError):
        admin.invoke(EXEMPT, REQUEST_ID)
    result = admin.invoke(EXEMPT, REQUEST_ID)
    assert result["ok"] is True, result
    stored = list(admin.exemptions.items.values())
    assert [(e.cve, e.request_id, e.revoked_at) for e in stored] == [("CVE-2024-6387", REQUEST_ID, None)]
    assert list(admin.exemptions.log) == [REQUEST_ID]
    assert admin.exemptions.calls["add"] == 1  # written once (an injected failure stops a call before the store)
    # another request for the same exemption is a duplicate
    again = admin.invoke(EXEMPT, "another-request")
    assert again["error"]["field"] == "cve"


def test_the_call_lists_cover_every_write() -> None:
    assert ("registry", "add_tag", 1) in QUARANTINE_CALLS
    assert ("registry", "remove_tags", 1) in QUARANTINE_CALLS
    assert ("announcer", "publish", 1) in QUARANTINE_CALLS
    assert ("store", "save", 2) in QUARANTINE_CALLS  # the announcement's debt is cleared
    assert ("exemptions", "record", 1) in QUARANTINE_CALLS
    assert ("exemptions", "add", 1) in EXEMPT_CALLS


RESCAN = {"action": "rescan", "repository": REPOSITORY, "tag": "v2", "reason": "new feed", "by": "dave"}


def _rescan_calls() -> list[tuple[str, str, int]]:
    METHODS["scans"] = ("repository_arn", "scan_type", "start_scan", "last_scan")
    return _calls(_image, RESCAN)


RESCAN_CALLS = _rescan_calls()


@pytest.mark.parametrize("call", RESCAN_CALLS, ids=[f"{p}.{m}#{n}" for p, m, n in RESCAN_CALLS])
def test_rescan_fault_at_each_call_then_lambdas_retry(call: tuple[str, str, int]) -> None:
    """A basic rescan (StartImageScan: once a day per image) failed at any call: the retry starts it at most once,
    and the admin log has the request once."""
    admin = Admin()
    _image(admin)
    _failing_once(admin, call)
    with pytest.raises(FakeAwsError):
        admin.invoke(RESCAN, REQUEST_ID)
    admin.fakes.clock.advance(seconds=61)
    result = admin.invoke(RESCAN, REQUEST_ID)
    assert result["ok"] is True, result
    assert admin.scans.started == 1
    assert list(admin.exemptions.log) == [REQUEST_ID]
