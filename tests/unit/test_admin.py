"""The admin function on in-memory fakes (tests/fakes_exemptions.py): every action, every bad input (a structured
error naming the field, nothing changed), the admin log, and exemptions that apply to the very next decision."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_warden.admin.ports import Coverage
from ecr_warden.domain.records import ImageStatus
from ecr_warden.policy.load import parse_policy
from ecr_warden.policy.model import Policy
from tests.events import CRITICAL, inspector_scan
from tests.fakes import NOW, REPOSITORY
from tests.fakes_exemptions import Admin

CRITICAL_COUNTS = {"CRITICAL": 1, "HIGH": 1, "TOTAL": 2}
CVE = "CVE-2024-6387"
APPROVER = "security@example.com"


def policy(**document: Any) -> Policy:
    return parse_policy(json.dumps({"rules": [{"name": "r"}], **document}))


def q(digest: str) -> str:
    return "quarantined-" + digest[7:19]


@pytest.fixture
def admin() -> Admin:
    return Admin()


def critical_image(admin: Admin, tag: str = "v1", immutable: bool = True, seed: str = "bad") -> str:
    if REPOSITORY not in admin.fakes.registry.repositories:
        admin.fakes.registry.create_repository(immutable=immutable)
    digest = admin.fakes.registry.push(tag, seed)
    admin.fakes.enhanced.set(digest, CRITICAL)
    return digest


def quarantined(admin: Admin, tag: str = "v1", immutable: bool = True) -> str:
    digest = critical_image(admin, tag, immutable)
    assert admin.gate().handle(inspector_scan(digest, [tag], CRITICAL_COUNTS)).action == "quarantined"
    return digest


def exempt_add(**fields: Any) -> dict[str, Any]:
    return {
        "action": "exempt", "operation": "add", "repository": REPOSITORY, "cve": CVE, "expires": "2026-11-30",
        "reason": "sshd never starts in these images", "approver": APPROVER, "by": "alice", **fields,
    }  # fmt: skip


def refused(admin: Admin, payload: Any, field: str, kind: str | None = None) -> dict[str, Any]:
    """The request is refused with an error naming `field`, and nothing was written anywhere."""
    before = admin.writes
    result = admin.invoke(payload)
    assert result["ok"] is False, result
    assert set(result) == {"ok", "error"}
    assert result["error"]["field"] == field, result
    if kind:
        assert result["error"]["type"] == kind
    assert admin.writes == before, "a refused request changed something"
    assert "Traceback" not in json.dumps(result)
    return dict(result["error"])


# -- release --------------------------------------------------------------------------------------------------------


def test_release_restores_the_recorded_tags_and_logs_who_asked(admin: Admin) -> None:
    digest = quarantined(admin)
    result = admin.invoke(
        {"action": "release", "repository": REPOSITORY, "digest": digest, "reason": "false positive", "by": "alice"}
    )
    assert result["ok"] is True
    assert result["requested_by"] == {"identity": "alice", "verified": False}
    assert result["result"]["outcome"] == "released"
    assert (result["result"]["restored"], result["result"]["not_restored"]) == (["v1"], {})
    assert admin.fakes.registry.tags(digest) == ["v1"]
    record = admin.fakes.store.require(digest)
    assert record.history[-1].reason == "released by alice (unverified): false positive"
    log = admin.exemptions.log[result["request_id"]]
    assert (log["action"], log["by"], log["by_verified"], log["reason"]) == (
        "release",
        "alice",
        False,
        "false positive",
    )
    assert log["at"] == "2026-11-01T12:00:00Z"


def test_release_says_which_tags_are_not_restored_and_never_moves_them(admin: Admin) -> None:
    digest = quarantined(admin)
    fixed = admin.fakes.registry.push("v1", "fixed")
    result = admin.invoke(
        {"action": "release", "repository": REPOSITORY, "digest": digest, "reason": "fixed elsewhere", "by": "bob"}
    )
    assert result["result"]["outcome"] == "release_incomplete"
    assert result["result"]["restored"] == []
    assert result["result"]["not_restored"] == {"v1": fixed}
    assert admin.fakes.registry.tags(fixed) == ["v1"]
    assert admin.fakes.registry.tags(digest) == [q(digest)]


def test_release_refusals(admin: Admin) -> None:
    digest = quarantined(admin)
    base = {"action": "release", "repository": REPOSITORY, "digest": digest, "reason": "ok, fine", "by": "alice"}
    refused(admin, {k: v for k, v in base.items() if k != "reason"}, "reason", "invalid_request")
    refused(admin, {**base, "reason": "  "}, "reason", "invalid_request")
    refused(admin, {**base, "digest": "sha256:" + "0" * 64}, "digest", "rejected")  # no record
    refused(admin, {**base, "repository": "Not A Repo"}, "repository", "invalid_request")
    admin.governed = "other/*"
    refused(admin, base, "repository", "rejected")


def test_a_release_racing_a_new_scan_event_ends_in_one_consistent_state(admin: Admin) -> None:
    """The scan's decision is written between the release's read and its write: the release's conditional write
    fails, it reads again and releases what is recorded then; the record, ECR and the announcements agree."""
    digest = quarantined(admin)
    newer = [*CRITICAL, CRITICAL[0].model_copy(update={"id": "CVE-2025-0001"})]
    admin.fakes.enhanced.set(digest, newer)

    def scan_arrives() -> None:
        assert admin.gate().handle(inspector_scan(digest, [], CRITICAL_COUNTS)).action == "updated"

    admin.fakes.store.before("save", scan_arrives)
    result = admin.invoke(
        {"action": "release", "repository": REPOSITORY, "digest": digest, "reason": "accepted risk", "by": "alice"}
    )
    assert result["result"]["outcome"] == "released"
    record = admin.fakes.store.require(digest)
    assert record.status is ImageStatus.RELEASED
    assert record.released_fingerprint == record.fingerprint  # the findings it released are the latest ones
    assert [h.action for h in record.history][-2:] == ["updated", "released"]
    assert admin.fakes.registry.tags(digest) == ["v1"]
    assert admin.fakes.announcer.actions(digest) == ["quarantined", "updated", "released"]
    # a late scan with the same findings keeps it released
    assert admin.gate().handle(inspector_scan(digest, ["v1"], CRITICAL_COUNTS)).action == "kept_released"


# -- quarantine -----------------------------------------------------------------------------------------------------


def test_quarantine_by_tag_blocks_now_and_says_who_and_why(admin: Admin) -> None:
    admin.fakes.registry.create_repository()
    digest = admin.fakes.registry.push("v2", "suspicious")
    admin.fakes.registry.push("latest", "suspicious")
    result = admin.invoke(
        {"action": "quarantine", "repository": REPOSITORY, "tag": "v2", "reason": "leaked key, SEC-7", "by": "carol"}
    )
    assert result["ok"] is True, result
    assert result["result"]["outcome"] == "quarantined"
    assert result["result"]["digest"] == digest
    assert admin.fakes.registry.tags(digest) == [q(digest)]
    record = admin.fakes.store.require(digest)
    assert record.status is ImageStatus.QUARANTINED
    assert sorted(record.original_tags) == ["latest", "v2"]  # what a release brings back
    assert record.pending_announcement is None
    announced = admin.fakes.announcer.last()
    assert (announced.action, announced.reasons) == (
        "quarantined",
        ["quarantined by carol (unverified): leaked key, SEC-7"],
    )
    assert announced.trigger == "admin quarantine"
    assert admin.exemptions.log[result["request_id"]]["action"] == "quarantine"
    # the tags come back exactly with a release
    released = admin.invoke(
        {"action": "release", "repository": REPOSITORY, "digest": digest, "reason": "rotated", "by": "carol"}
    )
    assert released["result"]["outcome"] == "released"
    assert admin.fakes.registry.tags(digest) == ["latest", "v2"]


def test_quarantine_with_a_verified_identity_names_it(admin: Admin) -> None:
    admin.fakes.registry.create_repository()
    digest = admin.fakes.registry.push("v2", "x")
    arn = "arn:aws:sts::123456789012:assumed-role/admin/carol"
    payload = {"action": "quarantine", "repository": REPOSITORY, "digest": digest, "reason": "why not", "by": "c"}
    result = admin.invoke(payload, verified=arn)
    assert result["requested_by"] == {"identity": arn, "verified": True}
    assert admin.fakes.announcer.last().reasons == [f"quarantined by {arn}: why not"]


def test_quarantine_of_a_quarantined_image_changes_nothing(admin: Admin) -> None:
    digest = quarantined(admin)
    before = admin.fakes.registry.writes
    result = admin.invoke(
        {"action": "quarantine", "repository": REPOSITORY, "digest": digest, "reason": "again", "by": "carol"}
    )
    assert result["result"]["outcome"] == "noop"
    assert result["result"]["reason"].startswith("already quarantined")
    assert admin.fakes.registry.writes == before


def test_quarantine_in_audit_mode_changes_nothing_in_ecr(admin: Admin) -> None:
    admin.mode = "audit"
    admin.fakes.registry.create_repository()
    digest = admin.fakes.registry.push("v2", "x")
    result = admin.invoke(
        {"action": "quarantine", "repository": REPOSITORY, "tag": "v2", "reason": "check it", "by": "carol"}
    )
    assert result["result"]["outcome"] == "would_quarantine"
    assert admin.fakes.registry.writes == 0
    assert admin.fakes.registry.tags(digest) == ["v2"]


def test_quarantine_refusals(admin: Admin) -> None:
    admin.fakes.registry.create_repository()
    digest = admin.fakes.registry.push("v2", "x")
    base = {"action": "quarantine", "repository": REPOSITORY, "reason": "because", "by": "carol"}
    refused(admin, {**base, "tag": "nope"}, "tag", "rejected")
    refused(admin, {**base, "digest": "sha256:" + "1" * 64}, "digest", "rejected")
    refused(admin, {**base, "tag": "v2", "digest": digest}, "digest", "rejected")
    refused(admin, base, "digest", "rejected")
    refused(admin, {**base, "tag": "v2", "reason": ""}, "reason", "invalid_request")
    refused(admin, {**base, "tag": "v2", "extra": 1}, "extra", "invalid_request")
    refused(admin, {**base, "tag": "bad tag!"}, "tag", "invalid_request")
    refused(admin, {**base, "repository": "other/repo", "tag": "v2"}, "tag", "rejected")  # no such repository
    admin.policy = policy(rules=[{"name": "only-apps", "repositories": ["apps/*"]}])
    refused(admin, {**base, "tag": "v2"}, "repository", "rejected")  # outside the policy's rules
    admin.policy, admin.governed = None, "apps/*"
    refused(admin, {**base, "tag": "v2"}, "repository", "rejected")  # outside GovernedRepositories


# -- exempt ---------------------------------------------------------------------------------------------------------


def test_an_exemption_applies_to_the_very_next_decision(admin: Admin) -> None:
    digest = critical_image(admin)
    result = admin.invoke(exempt_add())
    assert result["ok"] is True, result
    assert result["result"]["exemption"]["state"] == "active"
    assert admin.fakes.store.calls["save"] == 0  # nothing about images changed
    outcome = admin.gate().handle(inspector_scan(digest, ["v1"], CRITICAL_COUNTS))
    assert outcome.action == "passed"
    announced = admin.fakes.announcer.last()
    assert announced.exempted == [CVE]
    assert f"exempted: {CVE} until 2026-11-30, approved by {APPROVER}" in announced.reasons
    assert admin.exemptions.calls["active"] == 1  # one read for the decision


def test_the_gate_reads_the_store_once_per_decision_and_not_for_a_clean_scan(admin: Admin) -> None:
    admin.fakes.registry.create_repository()
    digest = admin.fakes.registry.push("v1", "clean")
    clean = {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "INFORMATIONAL": 0, "UNTRIAGED": 0, "TOTAL": 0}
    assert admin.gate().handle(inspector_scan(digest, ["v1"], clean)).action == "passed"
    assert admin.exemptions.calls["active"] == 0


def test_the_gate_does_not_read_the_store_for_a_decision_that_passes_anyway(admin: Admin) -> None:
    admin.fakes.registry.create_repository()
    digest = admin.fakes.registry.push("v1", "high-only")
    admin.fakes.enhanced.set(digest, [CRITICAL[1]])  # HIGH: below the default block_at
    assert admin.gate().handle(inspector_scan(digest, ["v1"], {"HIGH": 1, "TOTAL": 1})).action == "passed"
    assert admin.exemptions.calls["active"] == 0


def test_a_revoked_exemption_counts_again_at_the_next_decision(admin: Admin) -> None:
    digest = critical_image(admin)
    admin.invoke(exempt_add())
    assert admin.gate().handle(inspector_scan(digest, ["v1"], CRITICAL_COUNTS)).action == "passed"
    revoke = {"action": "exempt", "operation": "revoke", "repository": REPOSITORY, "cve": CVE,
              "reason": "sshd ships now", "by": "dave"}  # fmt: skip
    result = admin.invoke(revoke)
    assert result["ok"] is True, result
    assert result["result"]["exemption"]["state"] == "revoked"
    assert admin.gate().handle(inspector_scan(digest, ["v1"], CRITICAL_COUNTS)).action == "quarantined"
    refused(admin, revoke, "cve", "rejected")  # nothing active to revoke any more
    listed = admin.invoke({"action": "exempt", "operation": "list", "by": "erin", "include_inactive": True})
    assert [e["state"] for e in listed["result"]["exemptions"]] == ["revoked"]
    assert admin.invoke({"action": "exempt", "operation": "list", "by": "erin"})["result"]["count"] == 0
    # a revoked exemption may be added again
    assert admin.invoke(exempt_add(reason="re-accepted after review"))["ok"] is True


def test_exemptions_of_the_store_and_of_the_policy_both_apply(admin: Admin) -> None:
    admin.policy = policy(
        rules=[{"name": "r", "tag_at": "HIGH"}],
        exemptions=[{"cve": "CVE-2023-44487", "expires": "2026-12-31T00:00:00Z", "reason": "http2 off",
                     "approver": "ciso"}],
    )  # fmt: skip
    digest = critical_image(admin)
    admin.invoke(exempt_add())
    assert admin.gate().handle(inspector_scan(digest, ["v1"], CRITICAL_COUNTS)).action == "passed"
    assert admin.fakes.announcer.last().exempted == ["CVE-2023-44487", CVE]


def test_an_exemption_for_one_digest_leaves_the_other_images_alone(admin: Admin) -> None:
    digest = critical_image(admin)
    other = critical_image(admin, "v2", seed="other")
    assert admin.invoke(exempt_add(digest=digest))["ok"] is True
    assert admin.gate().handle(inspector_scan(digest, ["v1"], CRITICAL_COUNTS)).action == "passed"
    assert admin.gate().handle(inspector_scan(other, ["v2"], CRITICAL_COUNTS)).action == "quarantined"


def test_exempt_list_shows_the_active_exemptions_and_is_logged(admin: Admin) -> None:
    critical_image(admin)
    admin.invoke(exempt_add())
    admin.invoke(exempt_add(cve="ghsa-ABCD-efgh-1234"))
    result = admin.invoke({"action": "exempt", "operation": "list", "repository": REPOSITORY, "by": "erin"})
    found = result["result"]["exemptions"]
    assert [(e["cve"], e["approver"], e["expires"]) for e in found] == [
        (CVE, APPROVER, "2026-11-30T00:00:00Z"),
        ("GHSA-abcd-efgh-1234", APPROVER, "2026-11-30T00:00:00Z"),
    ]
    assert found[0]["added_by"] == "alice (unverified)"
    assert admin.exemptions.log[result["request_id"]]["action"] == "exempt"


def test_exempt_add_refusals(admin: Admin) -> None:
    digest = critical_image(admin)
    refused(admin, exempt_add(expires="2026-10-01"), "expires", "rejected")  # in the past
    refused(admin, exempt_add(expires="2027-03-01"), "expires", "rejected")  # beyond 90 days
    refused(admin, exempt_add(expires="soon"), "expires", "invalid_request")
    refused(admin, exempt_add(cve="CVE-24-1"), "cve", "invalid_request")
    refused(admin, exempt_add(cve="RHSA-2024:1234"), "cve", "invalid_request")
    refused(admin, exempt_add(approver="security"), "approver", "invalid_request")
    refused(admin, exempt_add(reason="ok"), "reason", "invalid_request")
    refused(admin, exempt_add(repository="ses-base/missing"), "repository", "rejected")  # not in ECR
    refused(admin, exempt_add(digest="sha256:" + "2" * 64), "digest", "rejected")  # not in the repository
    refused(admin, {**exempt_add(), "operation": "extend"}, "operation", "invalid_request")
    refused(admin, {k: v for k, v in exempt_add().items() if k != "approver"}, "approver", "rejected")
    refused(admin, {k: v for k, v in exempt_add().items() if k != "expires"}, "expires", "rejected")
    refused(admin, {"action": "exempt", "operation": "list", "by": "x", "expires": "2026-11-30"}, "expires")
    admin.policy = policy(rules=[{"name": "apps", "repositories": ["apps/*"]}])
    refused(admin, exempt_add(), "repository", "rejected")  # outside the policy's rules
    admin.policy = policy(max_exemption_days=7)
    refused(admin, exempt_add(), "expires", "rejected")  # the policy's maximum
    admin.policy = None
    assert admin.invoke(exempt_add(digest=digest))["ok"] is True
    refused(admin, exempt_add(digest=digest), "cve", "rejected")  # a duplicate of an active exemption
    assert admin.invoke(exempt_add())["ok"] is True  # the repository-wide one is another exemption


# -- rescan ---------------------------------------------------------------------------------------------------------


def test_rescan_starts_a_basic_scan_once_a_day(admin: Admin) -> None:
    digest = critical_image(admin)
    payload = {"action": "rescan", "repository": REPOSITORY, "tag": "v1", "reason": "new feed", "by": "frank"}
    result = admin.invoke(payload)
    assert result["result"] | {"message": ""} == {
        "scanner": "basic", "started": True, "digest": digest, "status": "IN_PROGRESS", "message": "",
    }  # fmt: skip
    again = admin.invoke(payload)["result"]  # within the day: not started, and it says so (not an error)
    assert again["started"] is False
    assert again["next_possible_at"] == "2026-11-02T12:00:00Z"
    assert "not started" in again["message"]
    assert admin.scans.started == 1
    admin.fakes.clock.advance(hours=24)
    assert admin.invoke(payload)["result"]["started"] is True


def test_rescan_under_enhanced_scanning_reports_inspectors_coverage(admin: Admin) -> None:
    digest = critical_image(admin)
    admin.scans.type = "ENHANCED"
    admin.scans.coverages[(REPOSITORY, digest)] = Coverage("ACTIVE", "SUCCESSFUL", NOW, "EC2_SSM_AGENT_BASED")
    result = admin.invoke(
        {"action": "rescan", "repository": REPOSITORY, "digest": digest, "reason": "new feed", "by": "frank"}
    )
    found = result["result"]
    assert (found["started"], found["coverage"], found["last_scanned_at"]) == (False, "ACTIVE", "2026-11-01T12:00:00Z")
    assert "cannot be asked to rescan" in found["message"]
    assert admin.scans.calls["start_scan"] == 0


def test_rescan_refusals(admin: Admin) -> None:
    critical_image(admin)
    base = {"action": "rescan", "repository": REPOSITORY, "reason": "new feed", "by": "frank"}
    refused(admin, base, "digest", "rejected")
    refused(admin, {**base, "tag": "v9"}, "tag", "rejected")
    refused(admin, {**base, "repository": "ses-base/none", "tag": "v1"}, "repository", "rejected")
    refused(admin, {**base, "tag": "v1", "reason": None}, "reason", "invalid_request")


# -- enforce --------------------------------------------------------------------------------------------------------


def test_enforce_one_repository_dry_run_then_for_real(admin: Admin) -> None:
    admin.world.registry.create(REPOSITORY)
    dry = admin.invoke({"action": "enforce", "repository": REPOSITORY, "dry_run": True, "reason": "audit", "by": "gil"})
    assert dry["ok"] is True, dry
    assert any(change.startswith("tag_mutability: MUTABLE -> IMMUTABLE") for change in dry["result"]["changes"])
    assert admin.world.registry.writes() == 0
    real = admin.invoke({"action": "enforce", "repository": REPOSITORY, "dry_run": False, "reason": "fix", "by": "gil"})
    assert real["result"]["result"] == "enforced", real
    assert admin.world.registry.repos[REPOSITORY].mutability == "IMMUTABLE"
    assert admin.world.announcer.calls["publish"] == 1
    assert admin.exemptions.log[real["request_id"]]["action"] == "enforce"


def test_enforce_every_managed_repository(admin: Admin) -> None:
    admin.world.registry.create(REPOSITORY)
    admin.world.registry.create("ses-base/other")
    dry = admin.invoke({"action": "enforce", "dry_run": True, "reason": "audit", "by": "gil"})
    assert (dry["result"]["checked"], dry["result"]["truncated"]) == (2, False)
    assert admin.world.fan_out.calls["send"] == 0
    real = admin.invoke({"action": "enforce", "dry_run": False, "reason": "fix all", "by": "gil"})
    assert real["result"]["result"] == "fanned_out"
    assert admin.world.fan_out.calls["send"] == 1


def test_enforce_refusals(admin: Admin) -> None:
    admin.policy = policy(repository_settings={"profiles": [{"name": "apps", "repositories": ["apps/*"]}]})
    admin.world.registry.create(REPOSITORY)
    base = {"action": "enforce", "repository": REPOSITORY, "dry_run": False, "reason": "fix", "by": "gil"}
    refused(admin, base, "repository", "rejected")  # no profile manages it
    refused(admin, {**base, "repository": "apps/missing"}, "repository", "rejected")  # not in ECR
    refused(admin, {**base, "dry_run": "no"}, "dry_run", "invalid_request")


# -- the payload ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (None, "<root>"),
        ([], "<root>"),
        ("release", "<root>"),
        ({}, "action"),
        ({"action": "delete-everything"}, "action"),
        ({"action": 7}, "action"),
        (
            {"action": "release", "repository": REPOSITORY, "digest": "sha256:x", "reason": "why not", "by": "a"},
            "digest",
        ),
        ({"action": "quarantine", "repository": REPOSITORY, "tag": "v1", "reason": "why not"}, "by"),
        ({"action": "exempt", "by": "a"}, "operation"),
        ({"action": "enforce", "reason": "why not", "by": "a\nb"}, "by"),
    ],
)
def test_invalid_payloads_are_answered_with_the_field_and_change_nothing(
    admin: Admin, payload: Any, field: str
) -> None:
    error = refused(admin, payload, field, "invalid_request")
    assert error["message"]


def test_the_admin_settings_name_a_missing_variable() -> None:
    from ecr_warden.errors import ConfigurationError
    from ecr_warden.settings import AdminSettings

    with pytest.raises(ConfigurationError, match="RECONCILE_QUEUE_URL"):
        AdminSettings.from_env({"AUDIT_TABLE_NAME": "audit", "DECISION_BUS_NAME": "bus"})


def test_the_payload_is_a_discriminated_union_on_action() -> None:
    from pydantic import TypeAdapter

    from ecr_warden.admin.requests import request_union

    schema = TypeAdapter(request_union()).json_schema()
    assert schema["discriminator"]["propertyName"] == "action"
    mapping = sorted(schema["discriminator"]["mapping"])
    assert mapping == ["enforce", "exempt", "quarantine", "release", "report", "rescan", "run", "sweep"]


@pytest.mark.parametrize("action", ["registry", "__init__", "../release", "release\n", "Release", "ACTIONS"])
def test_an_action_name_that_is_not_an_action_is_refused_before_anything_is_imported(admin: Admin, action: str) -> None:
    """The payload's `action` picks a module to import: only the eight action names ever reach the import."""
    import sys

    loaded = set(sys.modules)
    error = refused(admin, {"action": action, "by": "mallory"}, "action", "invalid_request")
    assert "use one of release, quarantine" in error["message"]
    assert {name for name in set(sys.modules) - loaded if name.startswith("ecr_warden")} == set()
