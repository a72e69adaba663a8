"""`report` at scale: 1,000 repositories (any number as the argument) on moto provisioned from template.yaml, each
with two images, every tenth with a quarantined one and every fifth with a lifecycle policy. The report runs as the
CLI drives it: admin/entry.process with the deployed adapters, 200 repositories per invocation, a next_token between
invocations. Next to it, a bare loop doing only the reads the report needs (DescribeRepositories pages, then per
repository its settings reads, DescribeImages, the audit Query and the lifecycle preview), without the report's
evaluation and rendering. moto answers in-process: times are a floor set by moto's speed, call counts are real.
Run: .venv/bin/python benchmarks/report_at_scale.py [repositories]
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]

ACCOUNT = "123456789012"
REPOSITORIES = 1_000
LIMIT = 200
EXPIRE_UNTAGGED = json.dumps(
    {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan",
                                                   "countNumber": 1}, "action": {"type": "expire"}}]}
)  # fmt: skip


class Counter_:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def _seed(repositories: int, outputs: dict[str, str]) -> int:
    import boto3

    from ecr_warden.adapters.audit_store import DynamoAuditStore
    from ecr_warden.domain.images import Scope
    from ecr_warden.domain.records import HistoryEntry, ImageRecord, ImageStatus
    from ecr_warden_tools.local.images import image_manifest

    ecr = boto3.client("ecr", region_name="us-east-1")
    store = DynamoAuditStore(outputs["AuditTableName"], Scope(ACCOUNT, "us-east-1"), boto3.client("dynamodb"))
    now, quarantined = datetime.now(UTC), 0
    for i in range(repositories):
        name = f"team-{i % 20}/service-{i:05d}"
        ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
        first = ecr.put_image(repositoryName=name, imageManifest=image_manifest(f"{name}-1"), imageTag="v1")
        ecr.put_image(repositoryName=name, imageManifest=image_manifest(f"{name}-2"), imageTag="v2")
        if i % 5 == 0:
            ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=EXPIRE_UNTAGGED)
        if i % 10 == 0:
            digest = first["image"]["imageId"]["imageDigest"]
            entry = HistoryEntry(at=now, action="quarantined", status="QUARANTINED", reason="rule default: CVE-1",
                                 trigger="scan")  # fmt: skip
            store.save(ImageRecord(repository=name, digest=digest, status=ImageStatus.QUARANTINED, updated_at=now,
                                   original_tags=["v1"], history=[entry]), 0)  # fmt: skip
            quarantined += 1
    return quarantined


def _report(counter: Counter_) -> tuple[float, Counter[str], int, dict[str, Any]]:
    from ecr_warden.adapters import aws as aws_clients
    from ecr_warden.admin.entry import process
    from ecr_warden.settings import AdminSettings

    settings = AdminSettings(
        environment="dev", region="us-east-1", audit_table_name="ecr-warden-dev-audit-v2",
        decision_bus_name="ecr-warden-dev", policy_parameter_name="/ecr-warden/dev/policy",
        reconcile_queue_url=f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/ecr-warden-dev-settings-reconcile",
    )  # fmt: skip
    aws_clients.reset_clients()
    counter.take()
    started, token, invocations, reported = time.perf_counter(), None, 0, []
    while True:
        payload = {"action": "report", "by": "bench", "limit": LIMIT, **({"next_token": token} if token else {})}
        answer = process(payload, settings, ACCOUNT)
        assert answer["ok"], answer
        invocations += 1
        reported += answer["result"]["repositories"]
        token = answer["result"]["next_token"]
        if token is None:
            break
    seconds = time.perf_counter() - started
    from ecr_warden_tools.report_render import merge

    summary = merge([{**answer["result"], "repositories": reported}])["summary"]
    return seconds, counter.take(), invocations, summary


def _bare(counter: Counter_, table: str) -> tuple[float, Counter[str], int]:
    """Only the reads the report needs, in a plain loop."""
    import boto3

    from ecr_warden.adapters.dynamodb_items import partition_key
    from ecr_warden.domain.images import Scope

    ecr, dynamodb = boto3.client("ecr", region_name="us-east-1"), boto3.client("dynamodb", region_name="us-east-1")
    counter.take()
    started, listed = time.perf_counter(), 0
    ecr.get_registry_scanning_configuration()
    for page in ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 1000}):
        for repository in page["repositories"]:
            name, listed = repository["repositoryName"], listed + 1
            ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])
            for read in (ecr.get_lifecycle_policy, ecr.get_repository_policy):
                with contextlib.suppress(ecr.exceptions.ClientError):
                    read(repositoryName=name)
            sum(d.get("imageSizeInBytes", 0) for d in ecr.describe_images(repositoryName=name)["imageDetails"])
            dynamodb.query(
                TableName=table, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": partition_key(Scope(ACCOUNT, "us-east-1"), name)}},
            )  # fmt: skip
            with contextlib.suppress(ecr.exceptions.ClientError):
                ecr.start_lifecycle_policy_preview(repositoryName=name)
                ecr.get_lifecycle_policy_preview(repositoryName=name, maxResults=100)
    return time.perf_counter() - started, counter.take(), listed


def measure(repositories: int = REPOSITORIES) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from ecr_warden.observability import logger, metrics
    from ecr_warden_tools.local import moto_patches
    from ecr_warden_tools.local.provision import Provisioner
    from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults

    metrics.add_metric = lambda **_: None  # type: ignore[method-assign]
    logger.setLevel("ERROR")
    moto_patches.apply()
    with mock_aws():
        boto3.setup_default_session(region_name="us-east-1")
        counter = Counter_()
        boto3.DEFAULT_SESSION.events.register("before-call.*.*", counter)  # type: ignore[union-attr]
        template = load_template(ROOT / "template.yaml")
        resolver = Resolver(template, parameter_defaults(template), "us-east-1", ACCOUNT)
        outputs = (
            Provisioner(lambda service: boto3.client(service, region_name="us-east-1"), template, ROOT, resolver)
            .run()
            .outputs
        )
        started = time.perf_counter()
        quarantined = _seed(repositories, outputs)
        seed_s = time.perf_counter() - started
        report = _report(counter)
        bare = _bare(counter, outputs["AuditTableName"])
    return {"seed_s": seed_s, "quarantined": quarantined, "report": report, "bare": bare}


def print_result(result: dict[str, Any], repositories: int) -> None:
    seconds, calls, invocations, summary = result["report"]
    bare_s, bare_calls, listed = result["bare"]
    total, bare_total = sum(calls.values()), sum(bare_calls.values())
    assert summary["repositories"] == repositories, summary
    assert summary["blocked"] == result["quarantined"], summary
    top = ", ".join(f"{call} {n / repositories:.2f}" for call, n in calls.most_common(12))
    print(f"  per repository: {top}", file=sys.stderr)
    print(
        f"report of {repositories:,} repositories on moto: {seconds:.1f} s in {invocations} invocations "
        f"({seconds / invocations:.1f} s each), {total / repositories:.2f} AWS calls per repository, "
        f"{summary['blocked']} quarantined found; bare read loop: {bare_s:.1f} s, {bare_total / listed:.2f} calls per "
        f"repository (seeding took {result['seed_s']:.1f} s)"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else REPOSITORIES
    print_result(measure(count), count)
