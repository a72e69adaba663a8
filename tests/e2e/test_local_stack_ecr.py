"""The local stack answers the ECR calls of the settings guard and the operations guide like AWS, over HTTP with
boto3: real shapes where it plays the call, an AWS error with a code where it does not, and a CloudTrail event
for every mutating call."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from ecr_warden_tools.local.images import image_manifest
from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"


def _client(stack: RunningStack, service: str, region: str = "us-east-1") -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=stack.endpoint_url,
        region_name=region,
        config=Config(retries={"total_max_attempts": 1}),
    )


def _error(call: Any, **kwargs: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def test_an_operation_the_stack_does_not_play_is_an_aws_error_naming_it(stack: RunningStack) -> None:
    ecr = _client(stack, "ecr")
    code, status, message = _error(ecr.get_account_setting, name="BASIC_SCAN_TYPE_VERSION")
    assert (code, status) == ("UnsupportedOperation", 400)
    assert "ecr:GetAccountSetting" in message


def test_a_failure_inside_the_stack_is_a_500_internal_failure_logged_once(stack: RunningStack) -> None:
    scheduler = _client(stack, "scheduler")
    lines_before = len(stack.lines)
    code, status, message = _error(
        scheduler.create_schedule,
        Name="boom",
        GroupName="no-such-group",  # moto fails with a KeyError here
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:x", "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/r"},
    )
    assert (code, status) == ("InternalFailure", 500)
    assert "KeyError" in message
    logged = stack.wait_for(
        lambda: [line for line in stack.lines[lines_before:] if "failed inside the stack" in line], what="log line"
    )
    assert len(logged) == 1
    assert "Traceback" not in "\n".join(stack.lines[lines_before:])


def test_put_image_into_a_missing_repository_is_repository_not_found(stack: RunningStack) -> None:
    ecr = _client(stack, "ecr")
    code, status, _ = _error(ecr.put_image, repositoryName="e2e/missing", imageManifest=image_manifest("m"))
    assert (code, status) == ("RepositoryNotFoundException", 400)


def _lifecycle_policy(*rules: dict[str, Any]) -> str:
    return json.dumps({"rules": [{"rulePriority": i + 1, **rule} for i, rule in enumerate(rules)]})


def test_lifecycle_preview_evaluates_the_rules_over_the_images(stack: RunningStack) -> None:
    ecr = _client(stack, "ecr")
    repository = "e2e/lifecycle"
    ecr.create_repository(repositoryName=repository)
    digests = {}
    for tag in ("dev-1", "dev-2", "dev-3", "v1.0.0"):
        pushed = ecr.put_image(repositoryName=repository, imageManifest=image_manifest(f"lc-{tag}"), imageTag=tag)
        digests[tag] = pushed["image"]["imageId"]["imageDigest"]
    untagged = ecr.put_image(repositoryName=repository, imageManifest=image_manifest("lc-untagged"))
    policy = _lifecycle_policy(
        {
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["dev-"],
                "countType": "imageCountMoreThan",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        },
        {
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
            "action": {"type": "expire"},
        },
        {
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100},
            "action": {"type": "expire"},
        },
    )
    with pytest.raises(ClientError, match="LifecyclePolicyPreviewNotFoundException"):
        ecr.get_lifecycle_policy_preview(repositoryName=repository)

    started = ecr.start_lifecycle_policy_preview(repositoryName=repository, lifecyclePolicyText=policy)
    assert started["status"] == "IN_PROGRESS"
    preview = ecr.get_lifecycle_policy_preview(repositoryName=repository)

    assert preview["status"] == "COMPLETE"
    assert preview["lifecyclePolicyText"] == policy
    expired = {r["imageDigest"]: r for r in preview["previewResults"]}
    # dev-1..3 were pushed within the same second: the newest kept is one of them, the other two expire
    assert len(expired) == 2
    assert set(expired) <= {digests["dev-1"], digests["dev-2"], digests["dev-3"]}
    assert untagged["image"]["imageId"]["imageDigest"] not in expired  # pushed just now: not 7 days old
    assert all(r["action"] == {"type": "EXPIRE"} and r["appliedRulePriority"] == 1 for r in expired.values())
    assert preview["summary"] == {"expiringImageTotalCount": 2}

    # without a text, the preview uses the repository's policy; without one, ECR says so
    with pytest.raises(ClientError, match="LifecyclePolicyNotFoundException"):
        ecr.start_lifecycle_policy_preview(repositoryName=repository)
    bad = _lifecycle_policy(
        {
            "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    )
    code, status, message = _error(
        ecr.start_lifecycle_policy_preview, repositoryName=repository, lifecyclePolicyText=bad
    )
    assert (code, status) == ("InvalidParameterException", 400)
    assert "tagPrefixList" in message


def test_pull_through_cache_rules_and_creation_templates_are_kept(stack: RunningStack) -> None:
    ecr = _client(stack, "ecr")
    created = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="e2e-public", upstreamRegistryUrl="public.ecr.aws")
    assert created["upstreamRegistry"] == "ecr-public"
    assert created["registryId"] == ACCOUNT
    code, _, _ = _error(
        ecr.create_pull_through_cache_rule, ecrRepositoryPrefix="e2e-hub", upstreamRegistryUrl="registry-1.docker.io"
    )
    assert code == "ValidationException"  # Docker Hub needs a credentialArn
    rules = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["e2e-public"])["pullThroughCacheRules"]
    assert [r["upstreamRegistryUrl"] for r in rules] == ["public.ecr.aws"]
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="e2e-public")
    code, _, _ = _error(ecr.describe_pull_through_cache_rules, ecrRepositoryPrefixes=["e2e-public"])
    assert code == "PullThroughCacheRuleNotFoundException"

    template = ecr.create_repository_creation_template(
        prefix="e2e-tpl", appliedFor=["PULL_THROUGH_CACHE"], imageTagMutability="IMMUTABLE"
    )["repositoryCreationTemplate"]
    assert template["encryptionConfiguration"] == {"encryptionType": "AES256"}
    ecr.update_repository_creation_template(prefix="e2e-tpl", imageTagMutability="MUTABLE")
    described = ecr.describe_repository_creation_templates(prefixes=["e2e-tpl"])["repositoryCreationTemplates"]
    assert described[0]["imageTagMutability"] == "MUTABLE"
    ecr.delete_repository_creation_template(prefix="e2e-tpl")
    code, _, _ = _error(ecr.delete_repository_creation_template, prefix="e2e-tpl")
    assert code == "TemplateNotFoundException"


def test_registry_scanning_configuration_persists_and_is_validated(stack: RunningStack) -> None:
    ecr = _client(stack, "ecr")
    rules = [
        {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "ses-base/*", "filterType": "WILDCARD"}]}
    ]
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=rules)
    assert _client(stack, "ecr").get_registry_scanning_configuration()["scanningConfiguration"] == {
        "scanType": "ENHANCED",
        "rules": rules,
    }
    other_region = _client(stack, "ecr", region="eu-west-1").get_registry_scanning_configuration()
    assert other_region["scanningConfiguration"] == {"scanType": "BASIC", "rules": []}  # per account and region
    code, status, _ = _error(ecr.put_registry_scanning_configuration, scanType="BASIC", rules=rules)
    assert (code, status) == ("ValidationException", 400)  # continuous scanning is enhanced scanning only
    ecr.create_repository(repositoryName="e2e-ses-base/api")  # "ses-base/*" must not match it by substring
    scanning = ecr.batch_get_repository_scanning_configuration(repositoryNames=["e2e-ses-base/api"])
    assert scanning["scanningConfigurations"][0]["scanFrequency"] == "MANUAL"


def _cloudtrail_queue(stack: RunningStack, name: str) -> str:
    sqs, events = stack.client("sqs"), stack.client("events")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    events.put_rule(Name=name, EventPattern=json.dumps({"detail-type": ["AWS API Call via CloudTrail"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"}])
    return str(queue_url)


Seen = dict[str, list[dict[str, Any]]]


def _drain(stack: RunningStack, queue_url: str, done: Callable[[Seen], bool]) -> Seen:
    sqs = stack.client("sqs")
    seen: Seen = {}

    def collect() -> bool:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            detail = json.loads(message["Body"])["detail"]
            if detail["userIdentity"]["type"] == "IAMUser":  # this test's calls, not the settings guard's answers
                seen.setdefault(detail["eventName"], []).append(detail)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return done(seen)

    stack.wait_for(collect, what="CloudTrail events")
    return seen


DRIFT_CALLS = {
    "CreateRepository",
    "PutImageTagMutability",
    "PutImageScanningConfiguration",
    "PutLifecyclePolicy",
    "DeleteLifecyclePolicy",
    "SetRepositoryPolicy",
    "DeleteRepositoryPolicy",
    "TagResource",
    "UntagResource",
    "PutRegistryScanningConfiguration",
}


def test_every_settings_drift_call_emits_its_cloudtrail_event(stack: RunningStack) -> None:
    queue_url = _cloudtrail_queue(stack, "e2e-drift")
    ecr = _client(stack, "ecr")
    repository = "e2e/drift"
    arn = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{repository}"
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "pull",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                    "Action": ["ecr:BatchGetImage"],
                }
            ],
        }
    )
    lifecycle = _lifecycle_policy(
        {
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        }
    )
    ecr.create_repository(repositoryName=repository, encryptionConfiguration={"encryptionType": "KMS"})
    ecr.put_image_tag_mutability(
        repositoryName=repository,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
    )
    ecr.put_image_scanning_configuration(repositoryName=repository, imageScanningConfiguration={"scanOnPush": True})
    ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=lifecycle)
    ecr.delete_lifecycle_policy(repositoryName=repository)
    ecr.set_repository_policy(repositoryName=repository, policyText=policy)
    ecr.delete_repository_policy(repositoryName=repository)
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "team", "Value": "platform"}])
    ecr.untag_resource(resourceArn=arn, tagKeys=["team"])
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[])
    _error(ecr.delete_repository_policy, repositoryName=repository)  # fails: no policy any more

    seen = _drain(stack, queue_url, lambda seen: set(seen) >= DRIFT_CALLS and len(seen["DeleteRepositoryPolicy"]) == 2)

    created = seen["CreateRepository"][0]
    assert created["requestParameters"] == {
        "repositoryName": repository,
        "encryptionConfiguration": {"encryptionType": "KMS"},
    }
    repo = created["responseElements"]["repository"]
    assert repo["repositoryArn"] == arn
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert repo["createdAt"].endswith(("AM", "PM"))  # CloudTrail writes "Jun 11, 2025, 10:05:44 AM"
    assert created["resources"] == [{"accountId": ACCOUNT, "ARN": arn}]
    mutability = seen["PutImageTagMutability"][0]["responseElements"]
    assert mutability["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    deleted = [e for e in seen["DeleteRepositoryPolicy"] if "errorCode" not in e]
    assert json.loads(deleted[0]["responseElements"]["policyText"]) == json.loads(policy)
    assert seen["PutLifecyclePolicy"][0]["responseElements"]["lifecyclePolicyText"] == lifecycle
    assert seen["TagResource"][0]["responseElements"] is None
    assert seen["TagResource"][0]["resources"] == [{"accountId": ACCOUNT, "ARN": arn}]
    registry = seen["PutRegistryScanningConfiguration"][0]
    assert registry["responseElements"] == {"registryScanningConfiguration": {"scanType": "BASIC", "rules": []}}
    assert "resources" not in registry  # a registry-level call names no repository
    # CloudTrail records failed calls too, with the error and no response
    (failed,) = [e for e in seen["DeleteRepositoryPolicy"] if "errorCode" in e]
    assert failed["errorCode"] == "RepositoryPolicyNotFoundException"
    assert failed["responseElements"] is None
    assert "does not exist" in failed["errorMessage"]


def test_exclusion_filters_go_with_an_exclusion_mutability_only(stack: RunningStack) -> None:
    ecr = _client(stack, "ecr")
    ecr.create_repository(repositoryName="e2e/mutability")
    code, status, _ = _error(
        ecr.put_image_tag_mutability, repositoryName="e2e/mutability", imageTagMutability="IMMUTABLE_WITH_EXCLUSION"
    )
    assert (code, status) == ("InvalidParameterException", 400)
    answered = ecr.put_image_tag_mutability(
        repositoryName="e2e/mutability",
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
    )
    assert answered["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    (described,) = ecr.describe_repositories(repositoryNames=["e2e/mutability"])["repositories"]
    assert described["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert described["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
