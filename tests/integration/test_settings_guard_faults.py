"""Every AWS call the settings guard makes, failed once at the botocore level (throttling, 500, timeout: what the
invocation sees after the SDK's retries), then Lambda's retries of the same event; and the same event delivered
twice at once. Real adapters on moto. The end state is consistent every time: the repository as the policy says,
one audit record done, one decision id announced; duplicates act once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ecr_warden import runtime
from tests.aws_faults import FAULT_KINDS, AwsFaults, atomic_moto, deliver_async, install
from tests.integration.conftest import Env
from tests.integration.test_settings_guard import Context, _handler, event, settings_of

ECR_WRITES = ("PutImageTagMutability", "PutLifecyclePolicy", "SetRepositoryPolicy", "TagResource")


@pytest.fixture
def faulty(aws: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, AwsFaults]]:
    from ecr_warden.adapters import aws as aws_clients

    faults = AwsFaults()
    handler = _handler("enforce", monkeypatch, aws)
    install(monkeypatch, faults)
    yield handler, faults
    aws_clients.reset_clients()


def _cold_start() -> None:
    """A new container: the policy is read from SSM again, so its read is a fault point too."""
    from aws_lambda_powertools.utilities import parameters

    runtime.forget_policy_sources()
    parameters.clear_caches()


def _consistent(aws: Env, repository: str, decisions: list[dict[str, Any]]) -> None:
    now = settings_of(aws, repository)
    assert now["mutability"] == "IMMUTABLE"
    assert len(now["rules"]) == 5
    assert {"Project", "Environment", "ManagedBy"} <= set(now["tags"])
    assert now["policy"] is not None
    mine = [d for d in decisions if d["repository"] == repository]
    assert len({d["decision_id"] for d in mine}) == 1, mine
    assert {c["setting"] for c in mine[0]["settings_changes"]} >= {"tag_mutability", "lifecycle_policy", "tags"}


def _done(aws: Env, repository: str) -> list[str]:
    items = aws.clients["dynamodb"].scan(TableName=aws.outputs["AuditTableName"])["Items"]
    return [
        i["status"]["S"]
        for i in items
        if i["pk"]["S"].endswith(f"#{repository}") and i["digest"]["S"] != "settings#state"
    ]


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_fault_at_every_call_then_lambdas_retries_ends_consistent(aws: Env, faulty: Any, kind: str) -> None:
    handler, faults = faulty
    aws.ecr.create_repository(repositoryName="ses-base/clean")
    faults.new_invocation()
    handler(event(repository="ses-base/clean"), Context())
    points = list(dict.fromkeys(faults.calls))
    assert {f"ecr:{w}#1" for w in ECR_WRITES} <= set(points)
    decisions = aws.decisions()
    for n, point in enumerate(points):
        repository = f"ses-base/fault-{n:02d}"
        aws.ecr.create_repository(repositoryName=repository)
        faults.reset()
        _cold_start()
        operation, occurrence = point.rsplit("#", 1)
        faults.plan(operation, int(occurrence), kind)
        delivery = deliver_async(lambda r=repository: handler(event(repository=r), Context()), faults.new_invocation)
        assert delivery.completed, (point, delivery.errors)
        assert faults.injected, point
        decisions += aws.decisions()
        _consistent(aws, repository, decisions)
        assert _done(aws, repository) == ["SETTINGS_DONE"], point


def test_duplicate_deliveries_at_once_act_once(aws: Env, faulty: Any) -> None:
    handler, faults = faulty
    aws.ecr.create_repository(repositoryName="ses-base/twice")
    raw = event(repository="ses-base/twice")
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def deliver() -> None:
        barrier.wait()
        results.append(handler(json.loads(json.dumps(raw)), Context()))

    with atomic_moto():
        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert sorted(r["result"] for r in results) in (["duplicate", "enforced"], ["enforced", "known"]), results
    writes = [op for op, _ in faults.effects if op.split(":")[1] in ECR_WRITES]
    assert len(writes) == 5, writes  # mutability, tags, policy, lifecycle and the KMS report tag, once each
    _consistent(aws, "ses-base/twice", aws.decisions())
