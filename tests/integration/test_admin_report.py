"""`report` end to end on moto provisioned from template.yaml: the deployed handler (admin/entry.process with real
adapters), the lifecycle preview of the local stack's ECR, read-only; and `ecr-warden report --in-process`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecr_warden.adapters import aws as aws_clients
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env
from tests.integration.test_admin_function import invoke  # noqa: F401 - the fixture
from tests.integration.test_scan_gate import CRITICAL

EXPIRE_UNTAGGED = json.dumps(
    {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                                                   "countNumber": 1}, "action": {"type": "expire"}}]}
)  # fmt: skip
OTHER = "ses-base/worker"


def _world(aws: Env) -> str:
    aws.create_repository()
    bad = aws.push("v1", "bad")
    aws.enhanced.findings[(REPOSITORY, bad)] = list(CRITICAL)
    assert aws.gate().handle(events.inspector_scan(bad, ["v1"], {"CRITICAL": 1, "TOTAL": 2})).action == "quarantined"
    aws.push("v2", "good")
    aws.push(None, "untagged-1")
    aws.push(None, "untagged-2")
    aws.ecr.put_lifecycle_policy(repositoryName=REPOSITORY, lifecyclePolicyText=EXPIRE_UNTAGGED)
    aws.create_repository(OTHER)
    aws.push("v1", "worker", repository=OTHER)
    return bad


def _snapshot(aws: Env) -> tuple[Any, ...]:
    items = aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"])["Items"]
    images = {
        name: sorted((d["imageDigest"], tuple(sorted(d.get("imageTags", []))))
                     for d in aws.ecr.describe_images(repositoryName=name)["imageDetails"])
        for name in (REPOSITORY, OTHER)
    }  # fmt: skip
    policy = aws.ecr.get_lifecycle_policy(repositoryName=REPOSITORY)["lifecyclePolicyText"]
    return sorted(json.dumps(i, sort_keys=True) for i in items if "##admin" not in i["pk"]["S"]), images, policy


def test_report_through_the_deployed_handler_reads_and_changes_nothing(aws: Env, invoke: Any) -> None:  # noqa: F811
    bad = _world(aws)
    expires = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    added = invoke({"action": "exempt", "operation": "add", "repository": REPOSITORY, "cve": "CVE-2024-6387",
                    "expires": expires, "reason": "sshd never starts", "approver": "security@example.com",
                    "by": "alice"})  # fmt: skip
    assert added["ok"] is True, added
    before = _snapshot(aws)
    aws.counter.calls.clear()

    answer = invoke({"action": "report", "by": "lead"})

    assert answer["ok"] is True, answer
    writes = {c for c in aws.counter.calls if not c.split(":")[1].startswith(("Get", "Describe", "List", "Query"))}
    assert writes <= {"ecr:StartLifecyclePolicyPreview", "dynamodb:PutItem"}, writes  # the admin log only
    assert _snapshot(aws) == before, "read-only: audit records, images and lifecycle policy unchanged"
    result = answer["result"]
    assert result["next_token"] is None
    assert (result["account"], result["region"]) == ("123456789012", "us-east-1")
    sections = {s["repository"]: s for s in result["repositories"]}
    assert set(sections) == {REPOSITORY, OTHER}
    main = sections[REPOSITORY]
    assert main["images"]["total"] == 4
    assert main["images"]["by_status"] == {"QUARANTINED": 1}
    assert [row["digest"] for row in main["blocked"]] == [bad]
    assert main["blocked"][0]["tags"] == ["v1"]
    assert [e["cve"] for e in main["expiring_exemptions"]] == ["CVE-2024-6387"]
    assert main["storage"]["bytes"] > 0
    assert main["lifecycle"]["available"] is True
    assert main["lifecycle"]["expiring"] == 1, main["lifecycle"]
    assert sections[OTHER]["lifecycle"]["message"] == "no lifecycle policy"
    assert main["drift"] is None or set(main["drift"]) == {"changes", "reports"}


def test_report_of_one_repository_and_refusals(aws: Env, invoke: Any) -> None:  # noqa: F811
    _world(aws)
    one = invoke({"action": "report", "repository": OTHER, "by": "lead"})
    assert [s["repository"] for s in one["result"]["repositories"]] == [OTHER]
    for payload, field in (
        ({"price_per_gb_month": -1}, "price_per_gb_month"),
        ({"next_token": "garbage"}, "next_token"),
        ({"repository": "ses-base/nothing-here"}, "repository"),
    ):
        refused = invoke({"action": "report", "by": "lead", **payload})
        assert refused["ok"] is False
        assert refused["error"]["field"] == field


def test_cli_report_markdown_in_process(aws: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from ecr_warden_tools.cli import main

    aws_clients.reset_clients()
    bad = _world(aws)
    common = ["--by", "lead", "--in-process", "--region", "us-east-1"]
    assert main(["report", "--format", "markdown", "--price-per-gb-month", "0.10", *common]) == 0
    out = capsys.readouterr().out
    for heading in (
        "# ECR security report",
        "## Summary",
        "## Settings drift",
        "## Quarantined images",
        "## Exemptions expiring within 14 days",
        "## Storage and estimated cost",
        "## Lifecycle preview",
    ):
        assert f"\n{heading}\n" in f"\n{out}", heading  # fmt: skip
    assert f"`{bad}`" in out
    assert "Estimated storage cost: $" in out
    assert "$0.10 per GB-month" in out
    assert "ECR's us-east-1 list price" in out

    assert main(["report", "--format", "csv", "--limit", "1", *common]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("repository,")
    assert len(captured.out.splitlines()) == 3  # two repositories, one invocation each
    assert "report: 2 repositories so far, done" in captured.err

    assert main(["report", "--price-per-gb-month", "-1", *common]) == 2
    assert "price_per_gb_month" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["report", "--format", "html", *common])
    assert exited.value.code == 2
