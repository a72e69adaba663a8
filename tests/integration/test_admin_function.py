"""The admin function end to end in-process: its deployed handler (functions/admin/app.py), real adapters against
moto provisioned from template.yaml, env vars as the template sets them."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_warden import runtime
from ecr_warden.adapters import aws as aws_clients
from ecr_warden.adapters.exemptions import DynamoExemptions
from ecr_warden.domain.records import ImageStatus
from tests.conftest import ROOT
from tests.integration import events
from tests.integration.conftest import REPOSITORY, SCOPE, Env
from tests.integration.test_scan_gate import CRITICAL


class Context:
    function_name = "ecr-warden-dev-admin"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ecr-warden-dev-admin"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


@pytest.fixture
def invoke(aws: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    for key, output in {
        "AUDIT_TABLE_NAME": "AuditTableName",
        "DECISION_BUS_NAME": "DecisionBusName",
        "POLICY_PARAMETER_NAME": "PolicyParameterName",
        "RECONCILE_QUEUE_URL": "SettingsReconcileQueueUrl",
    }.items():
        monkeypatch.setenv(key, aws.outputs[output])
    monkeypatch.setenv("WARDEN_MODE", "enforce")
    spec = importlib.util.spec_from_file_location("admin_app", ROOT / "functions/admin/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    count = iter(range(1, 10_000))

    def call(payload: Any, request_id: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = module.lambda_handler(payload, Context(request_id or f"req-{next(count)}"))
        return result

    yield call
    aws_clients.reset_clients()


def _items(aws: Env) -> list[dict[str, Any]]:
    return list(aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"]).get("Items", []))


def _expires(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


def test_quarantine_by_tag_then_release(aws: Env, invoke: Any) -> None:
    aws.create_repository()
    digest = aws.push("v1", "suspicious")
    result = invoke({"action": "quarantine", "repository": REPOSITORY, "tag": "v1", "reason": "leaked key",
                     "by": "carol"})  # fmt: skip
    assert result["ok"] is True, result
    assert result["result"]["outcome"] == "quarantined"
    assert aws.tags(digest) == ["quarantined-" + digest[7:19]]
    record = aws.record(digest)
    assert record is not None
    assert record.status is ImageStatus.QUARANTINED
    assert record.history[-1].reason == "quarantined by carol (unverified): leaked key"
    released = invoke({"action": "release", "repository": REPOSITORY, "digest": digest, "reason": "rotated",
                       "by": "carol"})  # fmt: skip
    assert released["result"]["outcome"] == "released"
    assert released["result"]["restored"] == ["v1"]
    assert aws.tags(digest) == ["v1"]
    assert [d["action"] for d in aws.decisions()] == ["quarantined", "released"]
    log = [i for i in _items(aws) if i["pk"]["S"].endswith("##admin")]
    assert sorted(i["action"]["S"] for i in log) == ["quarantine", "release"]
    assert {i["by"]["S"] for i in log} == {"carol"}
    assert {i["by_verified"]["BOOL"] for i in log} == {False}


def test_an_exemption_added_through_the_function_applies_to_the_next_decision(aws: Env, invoke: Any) -> None:
    aws.create_repository()
    digest = aws.push("v1", "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = [CRITICAL[0]]
    expires = _expires(30)
    added = invoke({"action": "exempt", "operation": "add", "repository": REPOSITORY, "cve": "cve-2024-6387",
                    "expires": expires, "reason": "sshd never starts", "approver": "security@example.com",
                    "by": "alice"})  # fmt: skip
    assert added["ok"] is True, added
    gate = aws.gate()
    gate.ports.exemptions = DynamoExemptions(aws.outputs["AuditTableName"], SCOPE, aws.clients["dynamodb"])
    outcome = gate.handle(events.inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 1}))
    assert outcome.action == "passed"
    decision = aws.decisions()[-1]
    assert decision["exempted"] == ["CVE-2024-6387"]
    assert f"exempted: CVE-2024-6387 until {expires}, approved by security@example.com" in decision["reasons"]
    listed = invoke({"action": "exempt", "operation": "list", "by": "erin"})
    assert [e["cve"] for e in listed["result"]["exemptions"]] == ["CVE-2024-6387"]
    revoked = invoke({"action": "exempt", "operation": "revoke", "repository": REPOSITORY, "cve": "CVE-2024-6387",
                      "reason": "fixed upstream", "by": "dave"})  # fmt: skip
    assert revoked["result"]["exemption"]["state"] == "revoked"
    gate = aws.gate()
    gate.ports.exemptions = DynamoExemptions(aws.outputs["AuditTableName"], SCOPE, aws.clients["dynamodb"])
    assert gate.handle(events.inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 1})).action == "quarantined"


def test_duplicate_and_invalid_requests_change_nothing(aws: Env, invoke: Any) -> None:
    aws.create_repository()
    payload = {"action": "exempt", "operation": "add", "repository": REPOSITORY, "cve": "CVE-2024-6387",
               "expires": _expires(10), "reason": "accepted", "approver": "sec@example.com", "by": "alice"}  # fmt: skip
    assert invoke(payload)["ok"] is True
    before = _items(aws)
    duplicate = invoke(payload)
    assert duplicate["error"]["field"] == "cve"
    assert invoke({**payload, "expires": _expires(365)})["error"]["field"] == "expires"
    assert invoke({**payload, "repository": "ses-base/none"})["error"] == {
        "type": "rejected", "field": "repository", "message": "ses-base/none: no such repository in ECR",
    }  # fmt: skip
    assert invoke({"action": "drop-table"})["error"]["field"] == "action"
    assert invoke("not json object")["ok"] is False
    assert _items(aws) == before


def test_lambdas_retry_of_an_exemption_whose_answer_was_lost_is_the_same_exemption(aws: Env, invoke: Any) -> None:
    aws.create_repository()
    payload = {"action": "exempt", "operation": "add", "repository": REPOSITORY, "cve": "GHSA-abcd-efgh-2345",
               "expires": _expires(10), "reason": "accepted", "approver": "sec@example.com", "by": "alice"}  # fmt: skip
    first = invoke(payload, "same-request")
    again = invoke(payload, "same-request")
    assert (first["ok"], again["ok"]) == (True, True)
    assert "already added by this request" in again["result"]["message"]


def test_rescan_starts_a_basic_scan(aws: Env, invoke: Any) -> None:
    aws.create_repository()
    digest = aws.push("v1", "image")
    result = invoke({"action": "rescan", "repository": REPOSITORY, "digest": digest, "reason": "new feed",
                     "by": "frank"})  # fmt: skip
    assert result["ok"] is True, result
    assert (result["result"]["scanner"], result["result"]["started"]) == ("basic", True)


def test_enforce_dry_run_reads_and_writes_nothing(aws: Env, invoke: Any) -> None:
    aws.ecr.create_repository(repositoryName=REPOSITORY)
    result = invoke({"action": "enforce", "repository": REPOSITORY, "dry_run": True, "reason": "check",
                     "by": "gil"})  # fmt: skip
    assert result["ok"] is True, result
    assert any(c.startswith("tag_mutability: MUTABLE -> IMMUTABLE") for c in result["result"]["changes"])
    described = aws.ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0]
    assert described["imageTagMutability"] == "MUTABLE"
