"""`sweep` on in-memory fakes: what the event path missed (an exempt image its revoked exemption no longer covers,
an image scanned but never decided, one unscanned past the policy's limit, settings drift), read-only, paginated,
and its refusals (apply is not offered yet; a garbage next_token)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ecr_warden.actions.report import encode_token
from tests.events import inspector_scan
from tests.fakes import NOW, REPOSITORY
from tests.fakes_exemptions import Admin
from tests.unit.test_admin import CRITICAL_COUNTS, CVE, critical_image, exempt_add, refused


@pytest.fixture
def admin() -> Admin:
    admin = Admin()
    admin.scans.type = "ENHANCED"
    return admin


def sweep(admin: Admin, **fields: Any) -> dict[str, Any]:
    answer = admin.invoke({"action": "sweep", "by": "schedule", "reason": "daily sweep", **fields})
    assert answer["ok"] is True, answer
    result: dict[str, Any] = answer["result"]
    return result


def test_sweep_finds_what_the_events_missed_and_changes_nothing(admin: Admin) -> None:
    exempt = critical_image(admin, "v1")
    assert admin.invoke(exempt_add(expires="2026-11-30"))["ok"] is True
    admin.gate().handle(inspector_scan(exempt, ["v1"], CRITICAL_COUNTS))
    assert admin.fakes.store.require(exempt).status.value == "PASSED"  # passed by the exemption
    revoke = {"action": "exempt", "operation": "revoke", "repository": REPOSITORY, "cve": CVE, "reason": "patched",
              "by": "alice"}  # fmt: skip
    assert admin.invoke(revoke)["ok"] is True
    undecided = admin.fakes.registry.push("v2", "missed-event")
    late = admin.fakes.registry.push("v3", "never-scanned")
    fresh = admin.fakes.registry.push("v4", "just-pushed")
    admin.inventory.scan_states[late] = (None, NOW - timedelta(hours=2))
    admin.inventory.scan_states[fresh] = ("IN_PROGRESS", NOW - timedelta(minutes=1))
    admin.world.registry.create(REPOSITORY)
    before, announced = admin.writes, admin.fakes.announcer.calls["publish"]

    result = sweep(admin)

    assert admin.writes == before + 1, "its admin-log entry only"
    assert admin.fakes.announcer.calls["publish"] == announced, "announces nothing: it does not act"
    assert result["applied"] is False
    assert "report only" in result["note"]
    assert [r["digest"] for r in result["exemption_expired"]] == [exempt]
    assert result["exemption_expired"][0]["verdict"] in ("BLOCK", "TAG")
    assert [r["digest"] for r in result["undecided"]] == [undecided]
    assert [r["digest"] for r in result["unscanned"]] == [late]
    assert [r["repository"] for r in result["drift"]] == [REPOSITORY]
    assert result["counts"] == {"exemption_expired": 1, "undecided": 1, "unscanned": 1, "drift": 1}
    assert result["next_token"] is None


def test_an_exempt_image_still_covered_is_not_reported(admin: Admin) -> None:
    digest = critical_image(admin, "v1")
    assert admin.invoke(exempt_add(expires="2026-11-30"))["ok"] is True
    admin.gate().handle(inspector_scan(digest, ["v1"], CRITICAL_COUNTS))
    assert sweep(admin)["counts"]["exemption_expired"] == 0


def test_sweep_pages_across_invocations(admin: Admin) -> None:
    for i in range(5):
        admin.fakes.registry.create_repository(f"team/app-{i}")
    admin.inventory.page_size = 2
    token, swept = None, 0
    while True:
        result = sweep(admin, limit=2, **({"next_token": token} if token else {}))
        swept += result["swept"]
        token = result["next_token"]
        if token is None:
            break
    assert swept == 5


@pytest.mark.parametrize(
    ("fields", "field", "kind"),
    [
        ({"apply": True}, "apply", "rejected"),
        ({"apply": "yes"}, "apply", "invalid_request"),
        ({"next_token": "garbage"}, "next_token", "invalid_request"),
        ({"next_token": encode_token("bad", 0)}, "next_token", "rejected"),
        ({"limit": -1}, "limit", "invalid_request"),
        ({"repository": REPOSITORY}, "repository", "invalid_request"),
    ],
)
def test_sweep_refusals_change_nothing(admin: Admin, fields: dict[str, Any], field: str, kind: str) -> None:
    critical_image(admin, "v1")
    refused(admin, {"action": "sweep", "by": "schedule", **fields}, field, kind)


class Continuation:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, payload: dict[str, Any]) -> None:
        self.sent.append(payload)


def test_the_scheduled_sweep_follows_its_next_token_in_new_invocations(admin: Admin) -> None:
    for i in range(5):
        admin.fakes.registry.create_repository(f"team/app-{i}")
    continuation = Continuation()
    tools = admin.tools

    def with_continuation(*args: Any) -> Any:
        made = tools(*args)
        made.continuation = continuation
        return made

    admin.tools = with_continuation  # type: ignore[method-assign]
    payload: dict[str, Any] = {"action": "sweep", "reason": "daily sweep", "by": "schedule", "follow": True,
                               "limit": 2}  # fmt: skip
    swept = 0
    while True:
        answer = admin.invoke(payload)
        assert answer["ok"] is True, answer
        swept += answer["result"]["swept"]
        if not continuation.sent:
            assert answer["result"]["continued"] is False
            break
        assert answer["result"]["continued"] is True
        payload = continuation.sent.pop()
        assert payload["next_token"] == answer["result"]["next_token"]
        assert (payload["follow"], payload["by"], payload["limit"]) == (True, "schedule", 2)
        assert (payload["account"], payload["region"]) == (answer["account"], answer["region"])  # the same registry
    assert swept == 5


def test_a_sweep_without_follow_never_invokes_itself(admin: Admin) -> None:
    for i in range(3):
        admin.fakes.registry.create_repository(f"team/app-{i}")
    result = sweep(admin, limit=1)
    assert result["next_token"] is not None
    assert result["continued"] is False
