"""`sweep` end to end on moto provisioned from template.yaml (the deployed handler) and `ecr-warden sweep
--in-process`: an image scanned but never decided (a missed event) is found; nothing changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_warden.adapters import aws as aws_clients
from tests.integration.conftest import REPOSITORY, SCOPE, Env
from tests.integration.test_admin_function import invoke  # noqa: F401 - the fixture


def _missed(aws: Env) -> str:
    """An image ECR scanned (DescribeImages: imageScanStatus COMPLETE) whose scan event never reached the gate.
    moto's DescribeImages leaves imageScanStatus out; ECR's answer carries it, so it is added as ECR would."""
    aws.create_repository()
    digest = aws.push("v1", "missed")
    aws.ecr.start_image_scan(repositoryName=REPOSITORY, imageId={"imageDigest": digest})

    def scanned(parsed: dict[str, Any], **_: Any) -> None:
        for detail in parsed.get("imageDetails", []):
            if detail["imageDigest"] == digest:
                detail["imageScanStatus"] = {"status": "COMPLETE", "description": "The scan was completed."}

    aws_clients.client("ecr", SCOPE).meta.events.register("after-call.ecr.DescribeImages", scanned)
    return digest


def test_sweep_through_the_deployed_handler_finds_a_missed_scan_event(aws: Env, invoke: Any) -> None:  # noqa: F811
    digest = _missed(aws)
    items = aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"])["Items"]
    answer = invoke({"action": "sweep", "reason": "daily sweep", "by": "schedule", "follow": True})
    assert answer["ok"] is True, answer
    result = answer["result"]
    assert [r["digest"] for r in result["undecided"]] == [digest]
    assert [r["repository"] for r in result["drift"]] == [REPOSITORY]
    assert (result["next_token"], result["continued"]) == (None, False)
    after = aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"])["Items"]
    new = [i for i in after if i not in items]
    assert [i["pk"]["S"].endswith("##admin") for i in new] == [True], "its admin-log entry only"
    assert aws.decisions() == [], "announces nothing"


def test_cli_sweep_in_process(aws: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from ecr_warden_tools.cli import main

    aws_clients.reset_clients()
    digest = _missed(aws)
    common = ["--by", "lead", "--in-process", "--region", "us-east-1"]
    assert main(["sweep", *common]) == 0
    out = capsys.readouterr().out
    assert "swept 1 repositories (report only" in out
    assert f"{REPOSITORY}@{digest}" in out
    assert main(["sweep", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["undecided"] == 1
    assert main(["sweep", "--apply", *common]) == 1
    assert "not offered yet" in capsys.readouterr().err
