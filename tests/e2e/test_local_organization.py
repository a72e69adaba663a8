"""`ecr-warden local --accounts 3 --regions 2`: one central deployment guards the images of member accounts in
several regions, replicas included (issue 12), on the one local endpoint."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ecr_warden_tools.local.stack import LocalStack
from tests.e2e.conftest import RunningStack, start_stack, stop_stack

pytestmark = pytest.mark.e2e

CENTRAL = "123456789012"


@pytest.fixture(scope="module")
def organization() -> Iterator[RunningStack]:
    running = start_stack("--accounts", "3", "--regions", "2")
    yield running
    assert stop_stack(running) == 0


def topology(stack: RunningStack) -> dict[str, Any]:
    found: dict[str, Any] = stack.state()["organization"]
    return found


def member_client(stack: RunningStack, service: str, account: str, region: str) -> Any:
    """A client in a member account, with credentials assumed into it (as its administrators would)."""
    sts = boto3.client(
        "sts",
        endpoint_url=stack.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    role = f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
    credentials = sts.assume_role(RoleArn=role, RoleSessionName="test")["Credentials"]
    return boto3.client(
        service,
        endpoint_url=stack.endpoint_url,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def replicate(ecr: Any, prefix: str, account: str, region: str, deletes: bool) -> None:
    """A replication rule as the users' guide writes it; `deleteReplication` is sent raw (botocore lacks it)."""
    rule: dict[str, Any] = {
        "destinations": [{"region": region, "registryId": account}],
        "repositoryFilters": [{"filter": prefix, "filterType": "PREFIX_MATCH"}],
    }

    def add_field(params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params["body"])
        body["replicationConfiguration"]["rules"][0]["deleteReplication"] = {"enabled": deletes}
        params["body"] = json.dumps(body).encode()

    ecr.meta.events.register("before-call.ecr.PutReplicationConfiguration", add_field)
    ecr.put_replication_configuration(replicationConfiguration={"rules": [rule]})


def push(stack: RunningStack, repository: str, tag: str, account: str, region: str) -> str:
    pushed = stack.cli(
        "push",
        "--repository",
        repository,
        "--tag",
        tag,
        "--account",
        account,
        "--region",
        region,
        "--endpoint-url",
        stack.endpoint_url,
    )
    return pushed.stdout.split(" as ", 1)[1].split()[0]


def scan_critical(stack: RunningStack, repository: str, digest: str, account: str, region: str) -> None:
    """`ecr-warden scan` with the critical fixture for an image in a member's registry, as a user would run it."""
    stack.cli("scan", "--repository", repository, "--digest", digest, "--fixture", "critical", "--account", account,
              "--region", region, "--endpoint-url", stack.endpoint_url)  # fmt: skip


def tags(ecr: Any, repository: str, digest: str) -> list[str]:
    details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])["imageDetails"]
    return list(details[0].get("imageTags") or [])


def quarantine_messages(stack: RunningStack, repository: str) -> list[str]:
    return [
        json.dumps(m["body"])
        for m in stack.state()["slack_messages"]
        if m["body"].get("text", "").startswith(f"Quarantined: {repository}")
    ]


def audit_record(stack: RunningStack, account: str, region: str, repository: str, digest: str) -> dict[str, Any]:
    table = stack.state()["outputs"]["AuditTableName"]
    key = {"pk": {"S": f"{account}#{region}#{repository}"}, "digest": {"S": digest}}
    item: dict[str, Any] = stack.client("dynamodb").get_item(TableName=table, Key=key).get("Item") or {}
    return item


def test_start_prints_the_organization_and_how_to_push_into_a_member(organization: RunningStack) -> None:
    found = topology(organization)
    assert found["central"] == {"account": CENTRAL, "region": "us-east-1"}
    assert found["regions"] == ["us-east-1", "us-west-2"]
    assert len(found["members"]) == 2
    listed = {a["Id"] for a in organization.client("organizations").list_accounts()["Accounts"]}
    assert set(found["members"]) | {CENTRAL} <= listed
    output = organization.output()
    assert f"organization {found['id']}: central account {CENTRAL} in us-east-1" in output
    for member in found["members"]:
        assert f"member account {member}" in output
    assert "ecr-warden push --repository REPO --tag TAG --account " in output
    member_role = member_client(organization, "iam", found["members"][0], "us-east-1").get_role(
        RoleName="ecr-warden-member"
    )
    assert member_role["Role"]["RoleName"] == "ecr-warden-member"


def test_a_critical_image_and_its_replica_are_each_quarantined_in_their_own_scope(
    organization: RunningStack,
) -> None:
    member_a, member_b = topology(organization)["members"]
    repository = "ses-base/api-server"
    source = member_client(organization, "ecr", member_a, "us-west-2")
    source.create_repository(repositoryName=repository)
    replicate(source, "ses-base/", member_b, "us-east-1", deletes=False)
    digest = push(organization, repository, "v1.2.3", member_a, "us-west-2")
    replica = member_client(organization, "ecr", member_b, "us-east-1")
    organization.wait_for(lambda: "v1.2.3" in _tags_or_none(replica, repository, digest), what="the replica of v1.2.3")

    for account, region in ((member_a, "us-west-2"), (member_b, "us-east-1")):
        scan_critical(organization, repository, digest, account, region)

    for ecr in (source, replica):
        organization.wait_for(
            lambda ecr=ecr: "v1.2.3" not in tags(ecr, repository, digest), what="the deployable tag removed"
        )
    for account, region in ((member_a, "us-west-2"), (member_b, "us-east-1")):
        record = organization.wait_for(
            lambda account=account, region=region: audit_record(organization, account, region, repository, digest),
            what=f"the audit record of the copy in {account}/{region}",
        )
        assert record["status"]["S"] == "QUARANTINED"
        assert (record["account"]["S"], record["region"]["S"]) == (account, region)
    messages = organization.wait_for(
        lambda: (found := quarantine_messages(organization, repository)) and len(found) >= 2 and found,
        what="two Slack messages",
    )
    assert len(messages) == 2
    for account, region in ((member_a, "us-west-2"), (member_b, "us-east-1")):
        assert sum(f"{account} / {region}" in message for message in messages) == 1


def test_with_delete_replication_the_source_quarantine_reaches_an_unscanned_replica(
    organization: RunningStack,
) -> None:
    member_a, member_b = topology(organization)["members"]
    repository = "ses-base/worker"
    source = member_client(organization, "ecr", member_b, "us-west-2")
    source.create_repository(repositoryName=repository)
    replicate(source, "ses-base/", member_a, "us-east-1", deletes=True)
    raw = source.describe_registry()  # botocore drops the field it lacks; the raw answer keeps it
    assert raw["replicationConfiguration"]["rules"][0]["destinations"] == [
        {"region": "us-east-1", "registryId": member_a}
    ]
    digest = push(organization, repository, "v2.0.0", member_b, "us-west-2")
    replica = member_client(organization, "ecr", member_a, "us-east-1")
    organization.wait_for(lambda: "v2.0.0" in _tags_or_none(replica, repository, digest), what="the replica")

    scan_critical(organization, repository, digest, member_b, "us-west-2")

    organization.wait_for(lambda: "v2.0.0" not in tags(source, repository, digest), what="the source quarantined")
    organization.wait_for(lambda: "v2.0.0" not in tags(replica, repository, digest), what="the replica's tag gone")
    assert any(t.startswith("quarantined-") for t in tags(replica, repository, digest))
    assert audit_record(organization, member_a, "us-east-1", repository, digest) == {}  # never scanned, no record


def _tags_or_none(ecr: Any, repository: str, digest: str) -> list[str]:
    try:
        return tags(ecr, repository, digest)
    except (ecr.exceptions.RepositoryNotFoundException, ecr.exceptions.ImageNotFoundException):
        return []


# -- SQS event sources with ScalingConfig.MaximumConcurrency ------------------------------------------------------

CONCURRENT_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  RunQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: runs.fifo
      FifoQueue: true
      ContentBasedDeduplication: true
  SerialQueue:
    Type: AWS::SQS::Queue
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.handler
      Runtime: python3.13
      Events:
        Runs:
          Type: SQS
          Properties:
            Queue: !GetAtt RunQueue.Arn
            BatchSize: 1
            ScalingConfig:
              MaximumConcurrency: 3
        Serial:
          Type: SQS
          Properties:
            Queue: !GetAtt SerialQueue.Arn
            BatchSize: 1
"""


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = tmp_path_factory.mktemp("concurrent")
    (directory / "fn").mkdir()
    (directory / "fn" / "app.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(0.05)\n    return {}\n"
    )
    (directory / "template.yaml").write_text(CONCURRENT_TEMPLATE)
    with LocalStack(directory / "template.yaml", echo=lambda _line: None) as stack:
        yield stack


def test_an_sqs_source_runs_up_to_its_maximum_concurrency_one_batch_per_message_group(
    concurrent: LocalStack,
) -> None:
    sqs = concurrent.client("sqs")
    url = sqs.get_queue_url(QueueName="runs.fifo")["QueueUrl"]
    groups = [f"{account}#{region}" for account in ("111111111111", "222222222222") for region in ("a", "b", "c")]
    for number in range(4):
        for group in groups:
            sqs.send_message(QueueUrl=url, MessageBody=f"{group} {number}", MessageGroupId=group)
    started = time.monotonic()
    assert concurrent.wait_idle(timeout=30)
    assert time.monotonic() - started < 30

    runs = concurrent.concurrency("Runs")
    assert runs["peak"] <= 3
    assert runs["peak"] >= 2, runs
    assert set(runs["peak_per_group"]) == set(groups)
    assert set(runs["peak_per_group"].values()) == {1}  # FIFO: one batch of a group in flight at a time
    assert set(runs["peak_per_account"]) == {"111111111111", "222222222222"}
    assert max(runs["peak_per_account"].values()) <= 3
    assert concurrent.concurrency("runs.fifo") == runs
    records = [i.result for i in concurrent.runtimes["Worker"].invocations]
    assert len(records) == len(groups) * 4


def test_without_scaling_config_a_source_stays_serial(concurrent: LocalStack) -> None:
    sqs = concurrent.client("sqs")
    url = sqs.get_queue_url(QueueName="local-SerialQueue")["QueueUrl"]
    for number in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=str(number))
    assert concurrent.wait_idle(timeout=30)
    assert concurrent.concurrency("Serial") == {"peak": 1, "peak_per_group": {}, "peak_per_account": {}}
    with pytest.raises(LookupError):
        concurrent.concurrency("nothing")


def test_local_refuses_numbers_out_of_range_in_one_line(tmp_path: Path) -> None:
    from tests.e2e.conftest import run_cli

    for option, value, expected in (
        ("--accounts", "0", "argument --accounts: 0 accounts: use 1..20"),
        ("--accounts", "21", "argument --accounts: 21 accounts: use 1..20"),
        ("--regions", "11", "argument --regions: 11 regions: use 1..10"),
        ("--regions", "two", "argument --regions: 'two' is not a number of regions"),
    ):
        completed = run_cli("local", option, value, check=False)
        assert completed.returncode == 2
        assert completed.stderr.strip().splitlines()[-1].endswith(expected)


def test_a_sweep_run_over_the_organization_from_the_cli(organization: RunningStack) -> None:
    """`ecr-warden run start sweep --accounts organization --wait`: the central admin function fans the run out on
    its FIFO queue, one registry (account#region) at a time, and the CLI follows it until every step is counted."""
    member_a, member_b = topology(organization)["members"]
    for account in (member_a, member_b):
        for region in ("us-east-1", "us-west-2"):
            ecr = member_client(organization, "ecr", account, region)
            for n in range(3):
                ecr.create_repository(repositoryName=f"sweep-{account[-4:]}/svc-{n}", imageTagMutability="MUTABLE")
    admin = ("--by", "lead", "--endpoint-url", organization.endpoint_url, "--region", "us-east-1")
    started = organization.cli("run", "start", "sweep", "--accounts", "organization", "--reason", "weekly", "--wait",
                               "--timeout", "120", "--json", *admin)  # fmt: skip
    status = json.loads(started.stdout[started.stdout.index("{") :])
    assert status["state"] == "done", status
    assert status["registries"]["failed"] == 0
    assert status["registries"]["total"] == status["registries"]["listed"] == 3 * 2  # central + 2 members, 2 regions
    assert status["counts"]["drift"] >= 12  # our 12 repositories at least: MUTABLE, no lifecycle policy
    peaks = organization.state()["concurrency"]["RunSteps"]
    assert max(peaks["peak_per_group"].values()) == 1  # one step at a time per registry
    assert max(peaks["peak_per_account"].values()) <= 2  # at most one per region of an account
    shown = organization.cli("run", "status", status["run_id"], "--rows", "200", *admin)
    assert f"{member_b}/us-west-2 sweep-{member_b[-4:]}/svc-2" in shown.stdout


def test_the_release_command_of_a_members_slack_message_releases_that_copy(organization: RunningStack) -> None:
    """The command a security team copies from Slack reaches the central deployment and acts in the member's
    registry (--account/--registry-region), not in the central account's."""
    member_a = topology(organization)["members"][0]
    repository = "ses-base/billing"
    ecr = member_client(organization, "ecr", member_a, "us-west-2")
    ecr.create_repository(repositoryName=repository)
    digest = push(organization, repository, "v3.0.0", member_a, "us-west-2")
    scan_critical(organization, repository, digest, member_a, "us-west-2")
    organization.wait_for(lambda: "v3.0.0" not in tags(ecr, repository, digest), what="the quarantine")
    [text] = organization.wait_for(lambda: quarantine_messages(organization, repository), what="the Slack message")
    body = json.dumps(json.loads(text), ensure_ascii=False)
    command = body[body.index("ecr-warden release") :].split("```", 1)[0]
    assert f"--region us-east-1 --account {member_a} --registry-region us-west-2 " in command
    arguments = shlex.split(command.replace("'…'", "'false positive SEC-9'"))[1:]
    released = organization.cli(*arguments, "--by", "lead", "--endpoint-url", organization.endpoint_url)
    assert released.stdout.startswith(f"released: {repository}@{digest}")
    assert "v3.0.0" in tags(ecr, repository, digest)
    record = audit_record(organization, member_a, "us-west-2", repository, digest)
    assert record["status"]["S"] == "RELEASED"
