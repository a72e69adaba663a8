"""Runs over many registries (ecr_warden.runs) on moto in-process, in organization mode: the central admin
function starts a run over two member accounts x two regions; the run queue (FIFO, template.yaml's) is drained
step by step through the function's own entry, each step acting in its registry through the member role. The run's
progress counts every step once, also when SQS delivers a step again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ecr_warden.adapters import aws as aws_clients
from ecr_warden.admin import entry as admin_entry
from ecr_warden.domain.images import Scope
from ecr_warden.settings import AdminSettings
from tests.events import ACCOUNT as CENTRAL
from tests.integration.conftest import Env, admin_settings, member_client

MEMBERS = ("210987654321", "987654321098")
REGIONS = ("us-east-1", "us-west-2")
SCOPES = [Scope(a, r) for a in MEMBERS for r in REGIONS]


def settings(aws: Env) -> AdminSettings:
    return admin_settings(aws, REGIONS)


@pytest.fixture
def estate(organization: Env) -> Iterator[Env]:
    """30 repositories in each member registry (two batches each), MUTABLE and without lifecycle policy."""
    for scope in SCOPES:
        ecr = member_client("ecr", scope)
        for n in range(30):
            ecr.create_repository(repositoryName=f"ses-base/svc-{n:02d}", imageTagMutability="MUTABLE")
    return organization


def ask(aws: Env, **payload: Any) -> dict[str, Any]:
    answer = admin_entry.process({"by": "alice", **payload}, settings(aws), account=CENTRAL)
    assert answer["ok"], answer
    return dict(answer["result"])


def drain(aws: Env, again: int | None = None, plain: bool = False) -> list[dict[str, Any]]:
    """Lambda's SQS source, one message per invocation: every step until the queue is empty. `again`: deliver
    that step (by position) a second time after it was processed, as SQS may."""
    sqs, url = aws.clients["sqs"], aws.outputs["RunQueueUrl"]
    done: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"]).get("Messages")
        if not messages:
            return done
        (message,) = messages
        record = {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
                  "attributes": message["Attributes"], "messageAttributes": {}, "md5OfBody": message["MD5OfBody"],
                  "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:runs.fifo",
                  "awsRegion": "us-east-1"}  # fmt: skip
        times = 2 if again == len(done) else 1
        for _ in range(times):
            run_settings = settings(aws)
            if plain:  # a single-account deployment
                run_settings = run_settings.model_copy(update={"member_role_name": "", "run_regions": ""})
            result = admin_entry.process_run_steps({"Records": [record]}, run_settings, account=CENTRAL)
            assert result == {"batchItemFailures": []}, result
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        done.append(json.loads(message["Body"]))


def test_a_sweep_run_covers_every_member_registry_one_step_per_group_and_counts_each_once(estate: Env) -> None:
    aws = estate
    started = ask(aws, action="run", operation="start", job="sweep", accounts=list(MEMBERS), reason="weekly")
    assert (started["registries"], started["queued"], started["new"]) == (4, 4, True)
    steps = drain(aws, again=5)  # one batch step delivered twice
    assert sorted({(s["account"], s["region"]) for s in steps}) == sorted((s.account, s.region) for s in SCOPES)
    assert sum(1 for s in steps if s["kind"] == "list") == 4
    assert sum(1 for s in steps if s["kind"] == "batch") == 8  # 30 repositories: 25 + 5, per registry

    status = ask(aws, action="run", operation="status", run_id=started["run_id"], rows=500)
    assert status["state"] == "done"
    assert status["updated_at"] >= status["started_at"]
    assert status["registries"] == {"total": 4, "listed": 4, "failed": 0, "pending": 0}
    assert status["batches"] == {"queued": 8, "done": 8, "pending": 0}
    assert status["repositories"] == {"listed": 120, "done": 120, "worked_on": 120}
    assert status["counts"] == {"drift": 120}  # MUTABLE, no lifecycle policy: the default profile's drift
    drift = [r for r in status["rows"] if r["kind"] == "drift"]
    assert len(drift) == 120
    assert {(r["account"], r["region"]) for r in drift} == {(s.account, s.region) for s in SCOPES}
    # read-only: nothing changed in the members' registries
    repository = member_client("ecr", SCOPES[0]).describe_repositories(repositoryNames=["ses-base/svc-00"])
    assert repository["repositories"][0]["imageTagMutability"] == "MUTABLE"


def test_a_reconcile_run_brings_every_member_registry_into_line_through_the_member_role(estate: Env) -> None:
    aws = estate
    started = ask(aws, action="run", operation="start", job="reconcile", accounts=list(MEMBERS))
    drain(aws)
    status = ask(aws, action="run", operation="status", run_id=started["run_id"])
    assert status["state"] == "done"
    assert status["counts"] == {"enforced": 120}
    for scope in SCOPES:
        found = member_client("ecr", scope).describe_repositories()["repositories"]
        assert {r["imageTagMutability"] for r in found} == {"IMMUTABLE"}, scope


def test_a_retried_start_queues_nothing_new(estate: Env) -> None:
    aws = estate
    payload = {
        "action": "run",
        "operation": "start",
        "job": "report",
        "accounts": [MEMBERS[0]],
        "regions": ["us-east-1"],
    }
    first = admin_entry.process({"by": "alice", **payload}, settings(aws), account=CENTRAL, request_id="req-1")
    again = admin_entry.process({"by": "alice", **payload}, settings(aws), account=CENTRAL, request_id="req-1")
    assert first["result"]["new"] is True
    assert again["result"]["new"] is False
    steps = drain(aws)
    assert sum(1 for s in steps if s["kind"] == "list") == 1  # SQS deduplicated the second list step
    status = ask(aws, action="run", operation="status", run_id=first["result"]["run_id"], rows=50)
    assert status["state"] == "done"
    assert status["counts"]["repositories"] == 30
    assert {r["account"] for r in status["rows"]} == {MEMBERS[0]}


def test_the_organizations_accounts_are_the_default_scope_of_an_organization_run(organization: Env) -> None:
    aws = organization
    organizations = aws_clients.client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    created = organizations.create_account(AccountName="member", Email="member@example.com")
    member = created["CreateAccountStatus"]["AccountId"]
    started = ask(aws, action="run", operation="start", job="sweep", accounts="organization")
    assert started["registries"] == 2 * len(REGIONS)  # the central (management) account and the member
    status = ask(aws, action="run", operation="status", run_id=started["run_id"])
    assert status["registries"]["total"] == 4
    steps = drain(aws)
    assert {s["account"] for s in steps} == {CENTRAL, member}


def test_a_single_account_deployment_refuses_other_accounts_and_regions(aws: Env) -> None:
    plain = settings(aws).model_copy(update={"member_role_name": "", "run_regions": ""})
    for extra, field in (({"accounts": ["210987654321"]}, "accounts"), ({"regions": ["us-west-2"]}, "regions"),
                         ({"accounts": "organization"}, "accounts")):  # fmt: skip
        answer = admin_entry.process({"action": "run", "operation": "start", "job": "sweep", "by": "a", **extra}, plain,
                                     account=CENTRAL)  # fmt: skip
        assert answer["ok"] is False, answer
        assert answer["error"]["field"] == field, answer
    answer = admin_entry.process({"action": "run", "operation": "start", "job": "sweep", "by": "a"}, plain,
                                 account=CENTRAL)  # fmt: skip
    assert answer["ok"]
    assert answer["result"]["registries"] == 1


def test_cli_run_start_then_status_until_done(aws: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI in-process (break-glass: the caller's own credentials, this account and region only)."""
    from ecr_warden_tools.cli import main

    aws_clients.reset_clients()
    aws.ecr.create_repository(repositoryName="ses-base/loose", imageTagMutability="MUTABLE")
    common = ["--by", "lead", "--in-process", "--region", "us-east-1"]
    assert main(["run", "start", "sweep", "--reason", "audit week", *common]) == 0
    printed = capsys.readouterr()
    run_id = printed.out.split()[1].rstrip(":")
    assert printed.out.startswith(f"run {run_id}: sweep over 1 registries queued")
    assert f"ecr-warden run status {run_id} --wait" in printed.err
    assert main(["run", "status", run_id, *common]) == 4  # nothing has worked on it yet
    assert "1 step(s) not counted yet" in capsys.readouterr().err
    drain(aws, plain=True)
    assert main(["run", "status", run_id, *common]) == 0
    out = capsys.readouterr().out
    assert "done" in out
    assert f"drift              {CENTRAL}/us-east-1 ses-base/loose" in out
    assert main(["run", "start", "sweep", "--reason", "audit", "--accounts", "210987654321", *common]) == 1
    assert "single-account deployment" in capsys.readouterr().err
    assert main(["run", "status", "nope", *common]) == 1
    assert "no run nope" in capsys.readouterr().err


def test_a_batch_is_described_in_one_call_and_a_repository_gone_meanwhile_is_skipped(aws: Env) -> None:
    from ecr_warden.adapters.repository_settings import EcrSettingsRegistry

    for name in ("ses-base/a", "ses-base/b"):
        aws.ecr.create_repository(repositoryName=name)
    registry = EcrSettingsRegistry(aws.ecr)
    aws.counter.calls.clear()
    registry.prefetch(["ses-base/a", "ses-base/b"])
    assert registry.repository("ses-base/a") is not None
    assert registry.repository("ses-base/b") is not None
    assert aws.counter.calls["ecr:DescribeRepositories"] == 1
    registry.prefetch(["ses-base/a", "ses-base/gone"])  # ECR refuses the whole call: each on its own then
    assert registry.repository("ses-base/gone") is None
    assert registry.repository("ses-base/a") is not None


def test_unreachable_registries_are_counted_with_their_reasons_on_the_real_table(aws: Env) -> None:
    """A registry whose member role can't be assumed (no member stack there) is reported with AWS's message;
    the summary keeps only a counter, so thousands of them can't outgrow its item."""
    from botocore.exceptions import ClientError

    from ecr_warden.adapters.runs import DynamoRunProgress, SqsRunQueue, unreachable
    from ecr_warden.admin.ports import RepositoryPage
    from ecr_warden.runs.model import BatchResult
    from ecr_warden.runs.ports import RunPorts
    from ecr_warden.runs.service import RunEngine, scopes_of

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform: sts:AssumeRole"}},
                         "AssumeRole")  # fmt: skip

    class Lister:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        def repositories(self, page_token: str | None) -> RepositoryPage:
            if self.scope.account == MEMBERS[1]:
                raise denied
            return RepositoryPage(["ses-base/a"], None)

    progress = DynamoRunProgress(aws.outputs["AuditTableName"], aws.clients["dynamodb"])
    queue = SqsRunQueue(aws.outputs["RunQueueUrl"], aws.clients["sqs"])
    engine = RunEngine(RunPorts(queue=queue, progress=progress, lister=Lister, unreachable=unreachable))
    engine.start("report-x", "report", scopes_of(list(MEMBERS), list(REGIONS)), "alice", None)
    for step in drain_steps(aws):
        engine.step(step, lambda step: BatchResult({"repositories": 1}, [], 1))
    status = progress.status("report-x")
    assert status is not None
    assert status.complete
    assert status.state == "done_with_unreachable"
    assert status.as_dict()["registries"] == {"total": 4, "listed": 2, "failed": 2, "pending": 0}
    assert set(status.failed_scopes) == {f"{MEMBERS[1]}#{r}" for r in REGIONS}
    assert all("sts:AssumeRole" in why for why in status.failed_scopes.values())


def drain_steps(aws: Env) -> Iterator[Any]:
    from ecr_warden.runs.model import RunStep

    sqs, url = aws.clients["sqs"], aws.outputs["RunQueueUrl"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            yield RunStep.model_validate_json(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_the_summary_stays_small_and_a_retried_list_step_sends_its_first_plan(aws: Env) -> None:
    """The summary (written by every count) holds the number of registries and a digest, not their list. A list
    step whose count failed after sending is retried after the registry changed: it sends what it planned first."""
    from ecr_warden.adapters.inventory import EcrInventory
    from ecr_warden.adapters.runs import DynamoRunProgress, SqsRunQueue, unreachable
    from ecr_warden.runs.model import BatchResult, RunStep
    from ecr_warden.runs.ports import RunPorts
    from ecr_warden.runs.service import RunEngine, RunRefused, scopes_of

    for n in range(30):
        aws.ecr.create_repository(repositoryName=f"ses-base/svc-{n:02d}")
    table, dynamodb = aws.outputs["AuditTableName"], aws.clients["dynamodb"]
    progress = DynamoRunProgress(table, dynamodb)
    sent: list[RunStep] = []

    class Queue(SqsRunQueue):
        def send(self, steps: Any) -> None:
            sent.extend(steps)

    lister = lambda scope: EcrInventory(table, scope, aws.ecr)  # noqa: E731
    ports = RunPorts(queue=Queue(aws.outputs["RunQueueUrl"]), progress=progress, lister=lister, unreachable=unreachable)
    engine = RunEngine(ports)
    scopes = scopes_of([CENTRAL], ["us-east-1"])
    engine.start("sweep-y", "sweep", scopes, "alice", None)
    item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "run#sweep-y"}, "digest": {"S": "summary"}})["Item"]
    assert "scopes" not in item
    assert item["scopes_total"] == {"N": "1"}
    assert engine.start("sweep-y", "sweep", scopes, "alice", None)["new"] is False
    with pytest.raises(RunRefused):
        engine.start("sweep-y", "sweep", scopes_of([CENTRAL], ["us-west-2"]), "alice", None)

    list_step = sent[0]
    sent.clear()
    listed, calls = progress.listed, []

    def flaky(step: RunStep, last: bool) -> bool:
        calls.append(step)
        if len(calls) == 1:
            raise RuntimeError("the count failed")
        return listed(step, last)

    progress.listed = flaky  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        engine.step(list_step, lambda step: BatchResult({}))
    first = list(sent)
    assert [len(s.repositories) for s in first] == [25, 5]
    for n in range(30, 45):
        aws.ecr.create_repository(repositoryName=f"ses-base/svc-{n:02d}")
    engine.step(list_step, lambda step: BatchResult({}))
    assert sent[len(first) :] == first
    for batch in first:
        engine.step(batch, lambda step: BatchResult({}, [], len(step.repositories)))
    status = progress.status("sweep-y")
    assert status is not None
    assert (status.state, status.counters["batches_queued"], status.counters["repositories_listed"]) == ("done", 2, 30)


def test_a_step_of_no_run_is_parked_not_worked_on(aws: Env) -> None:
    body = json.dumps({"kind": "batch", "run_id": "never-started", "job": "reconcile", "account": CENTRAL,
                       "region": "us-east-1", "repositories": ["ses-base/a"]})  # fmt: skip
    aws.ecr.create_repository(repositoryName="ses-base/a", imageTagMutability="MUTABLE")
    record = {"messageId": "m1", "receiptHandle": "h", "body": body, "attributes": {}, "messageAttributes": {},
              "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:r.fifo",
              "awsRegion": "us-east-1"}  # fmt: skip
    plain = settings(aws).model_copy(update={"member_role_name": "", "run_regions": ""})
    assert admin_entry.process_run_steps({"Records": [record]}, plain, account=CENTRAL) == {"batchItemFailures": []}
    repository = aws.ecr.describe_repositories(repositoryNames=["ses-base/a"])["repositories"][0]
    assert repository["imageTagMutability"] == "MUTABLE"  # not reconciled
