"""The settings guard's cost: AWS calls to bring a new repository into line (target <= 8), calls for a compliant
one (target: reads only), and a reconcile of many repositories (1,000 in `make bench`; any number as the argument)
through the fan-out queue, next to a bare pagination loop over the same repositories (DescribeRepositories only)
and one doing the same reads.

The reconcile runs as it does deployed: the schedule's invocation lists the registry and queues batches; each
queued message is then handled like an SQS-triggered invocation. moto answers in-process, so the times are a
floor set by moto's speed, not Lambda's; the call counts are the real ones.
Run: .venv/bin/python benchmarks/settings_at_scale.py [repositories]
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]

ACCOUNT = "123456789012"
REPOSITORIES = 1_000  # `make bench`; pass 10000 for the full run (about 15 minutes on moto)
NEW_REPOSITORY_TARGET = 8


class Counting:
    """boto3 clients on moto that count every call (service:Operation)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        import boto3

        if service not in self.clients:
            made = boto3.client(service, region_name="us-east-1")
            made.meta.events.register("before-call.*.*", self._count)
            self.clients[service] = made
        return self.clients[service]

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def _guard(clients: Counting, outputs: dict[str, str]) -> Any:
    from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
    from ecr_warden.adapters.repository_settings import DynamoSettingsAudit, EcrSettingsRegistry, SqsFanOut
    from ecr_warden.domain.images import Scope
    from ecr_warden.policy.load import default_policy
    from ecr_warden.repository_settings.context import SettingsContext
    from ecr_warden.repository_settings.ports import SettingsPorts
    from ecr_warden.repository_settings.service import SettingsGuard

    scope = Scope(ACCOUNT, "us-east-1")
    ports = SettingsPorts(
        registry=EcrSettingsRegistry(clients("ecr"), scope, clients("kms")),
        audit=DynamoSettingsAudit(outputs["AuditTableName"], scope, clients("dynamodb")),
        announcer=EventBridgeAnnouncer(outputs["DecisionBusName"], clients("events")),
        fan_out=SqsFanOut(outputs["SettingsReconcileQueueUrl"], clients("sqs")),
    )
    return SettingsGuard(SettingsContext(default_policy(), "enforce", ACCOUNT, "us-east-1", "bench"), ports)


def _event(sample: str, repository: str, event_id: str | None = None) -> Any:
    from ecr_warden.contracts.parsing import parse_aws_event

    raw = json.loads((ROOT / "events" / sample).read_text())
    raw["detail"]["requestParameters"]["repositoryName"] = repository
    raw["detail"]["responseElements"]["repository"]["repositoryName"] = repository
    if event_id:
        raw["id"] = raw["detail"]["eventID"] = event_id
    return parse_aws_event(raw)


def _writes(calls: Counter[str]) -> int:
    reads = ("Get", "Describe", "List", "BatchGet", "Query", "Receive")
    return sum(n for call, n in calls.items() if not call.split(":")[1].startswith(reads))


def single_repository(guard: Any, clients: Counting) -> dict[str, Any]:
    ecr = clients("ecr")
    ecr.create_repository(repositoryName="ses-base/worker")  # MUTABLE, no lifecycle policy, AES256: the guide's gap
    clients.take()
    fixed = guard.on_api_call(_event("cloudtrail-create-repository-defaults.json", "ses-base/worker"))
    new_calls = clients.take()
    # a later drift event about the repository, now compliant (a tag added by its team)
    again = guard.on_api_call(_event("cloudtrail-create-repository-defaults.json", "ses-base/worker", "evt-2"))
    compliant_calls = clients.take()
    return {
        "new": (sum(new_calls.values()), fixed.result, dict(new_calls)),
        "compliant": (sum(compliant_calls.values()), _writes(compliant_calls), again.result, dict(compliant_calls)),
    }


def _drain(guard: Any, clients: Counting, run_id: str) -> tuple[float, Counter[str], int]:
    """One reconcile run: the schedule's invocation queues batches; each message is then one SQS invocation."""
    sqs = clients("sqs")
    clients.take()
    started = time.perf_counter()
    guard.start_reconcile(run_id)
    queue_url = guard.ports.fan_out.queue_url
    messages = 0
    while received := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in received:
            batch = json.loads(message["Body"])
            guard.reconcile(batch["run_id"], batch["repositories"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages += 1
    return time.perf_counter() - started, clients.take(), messages


def reconcile(guard: Any, clients: Counting, repositories: int) -> dict[str, Any]:
    """Two runs over the same repositories: the first brings them into line, the second finds them compliant."""
    ecr = clients("ecr")
    for i in range(repositories):
        ecr.create_repository(repositoryName=f"team-{i % 50}/service-{i}", imageTagMutability="IMMUTABLE")
    first = _drain(guard, clients, "bench-1")
    second = _drain(guard, clients, "bench-2")
    return {"first": first, "second": second, **_bare(ecr)}


def _bare(ecr: Any) -> dict[str, Any]:
    """The floor: a pagination loop over the same repositories; then the same loop reading each one's settings."""
    started = time.perf_counter()
    names = [
        repository["repositoryName"]
        for page in ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 1000})
        for repository in page["repositories"]
    ]
    listing = time.perf_counter() - started
    started = time.perf_counter()
    for name in names:
        arn = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"
        ecr.list_tags_for_resource(resourceArn=arn)
        for read in (ecr.get_lifecycle_policy, ecr.get_repository_policy):
            with contextlib.suppress(ecr.exceptions.ClientError):  # none set: the answer is an error
                read(repositoryName=name)
    return {"bare_listing_s": listing, "bare_reads_s": time.perf_counter() - started, "listed": len(names)}


def measure(repositories: int = REPOSITORIES) -> dict[str, Any]:
    from moto import mock_aws

    from ecr_warden.observability import logger, metrics
    from ecr_warden_tools.local import moto_patches
    from ecr_warden_tools.local.provision import Provisioner
    from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults

    metrics.add_metric = lambda **_: None  # type: ignore[method-assign]
    logger.setLevel("ERROR")
    moto_patches.apply()
    with mock_aws():
        clients = Counting()
        template = load_template(ROOT / "template.yaml")
        resolver = Resolver(template, parameter_defaults(template), "us-east-1", ACCOUNT)
        outputs = Provisioner(clients, template, ROOT, resolver).run().outputs
        guard = _guard(clients, outputs)
        return {**single_repository(guard, clients), "reconcile": reconcile(guard, clients, repositories)}


def print_result(result: dict[str, Any], repositories: int) -> None:
    calls, action, by_call = result["new"]
    print(f"  new non-compliant repository: {calls} calls ({action}; target <= {NEW_REPOSITORY_TARGET})")
    print(f"           {json.dumps(by_call)}")
    calls, writes, action, by_call = result["compliant"]
    print(f"  compliant repository: {calls} calls, {writes} writes ({action}; target: reads only)")
    run = result["reconcile"]
    for label, (seconds, calls, messages) in (("non-compliant", run["first"]), ("compliant", run["second"])):
        total = sum(calls.values())
        print(
            f"  reconcile of {repositories:,} {label} repositories: {seconds:.1f} s, {messages} fan-out messages, "
            f"{total / repositories:.2f} calls and {_writes(calls) / repositories:.2f} writes per repository"
        )
    print(
        f"           bare loop: {run['bare_listing_s']:.1f} s to list {run['listed']:,} (DescribeRepositories only); "
        f"{run['bare_reads_s']:.1f} s reading each one's tags, lifecycle and repository policy"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else REPOSITORIES
    print_result(measure(count), count)
