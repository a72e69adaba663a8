"""The settings guard on in-memory fakes: what it changes, what it only reports, loop safety, audit mode, missing
repositories, duplicates, and a retry after a failure at every call."""

from __future__ import annotations

import json

import pytest

from ecr_warden.contracts.aws_events import CloudTrailEcrEvent
from ecr_warden.contracts.decision import Action
from ecr_warden.contracts.parsing import parse_aws_event
from ecr_warden.policy.load import default_policy, parse_policy
from ecr_warden.repository_settings import lifecycle
from ecr_warden.repository_settings.desired import NONCOMPLIANT_TAG
from ecr_warden.repository_settings.origin import creation_path
from ecr_warden.repository_settings.repo_policy import DENY_ANONYMOUS
from tests.unit.test_settings_guard_support import OWN_ROLE, WRITES, Throttled, World, cloudtrail

REPO = "ses-base/scratchpad"
KMS = {"encryption_type": "KMS", "kms_key": "arn:aws:kms:us-east-1:123456789012:key/abc"}


def event(**kwargs: object) -> CloudTrailEcrEvent:
    parsed = parse_aws_event(cloudtrail(**kwargs))  # type: ignore[arg-type]
    assert isinstance(parsed, CloudTrailEcrEvent)
    return parsed


def test_plain_create_repository_ends_with_the_policy_settings() -> None:
    world = World()
    world.registry.create(REPO)
    outcome = world.guard().on_api_call(event())
    repo = world.registry.repos[REPO]
    assert outcome.result == "enforced"
    assert repo.mutability == "IMMUTABLE"
    rules = lifecycle.parse_policy_text(repo.lifecycle_text)
    assert rules is not None
    assert len(rules) == 5
    assert rules[-1].selection.tag_prefix_list == ("quarantined-",)
    assert rules[-1].selection.count_number == 90
    assert repo.tags["Project"] == "ses-base"
    assert repo.tags["ManagedBy"] == "ecr-warden"
    assert DENY_ANONYMOUS in (repo.policy_text or "")
    # the KMS gap is reported and marked, never "fixed"
    assert repo.encryption_type == "AES256"
    assert repo.tags[NONCOMPLIANT_TAG] == "encryption"
    (decision,) = world.announcer.published
    assert decision.action is Action.SETTINGS_ENFORCED
    assert decision.subject == "repository"
    assert decision.digest is None
    assert decision.creation_path == "person_or_pipeline"
    assert {c.setting for c in decision.settings_changes} >= {"tag_mutability", "lifecycle_policy", "tags"}
    assert any("encryption is AES256" in r for r in decision.reasons)
    (record,) = world.audit.items.values()
    assert record["status"] == "DONE"
    assert record["changes"]


def test_nothing_is_written_when_compliant_and_known_gaps_are_not_announced_again() -> None:
    world = World()
    world.registry.create(REPO)
    world.guard().on_api_call(event(event_id="first"))
    writes, announced = world.registry.writes(), len(world.announcer.published)
    outcome = world.guard().on_api_call(event(name="cloudtrail-put-image-tag-mutability.json", repository=REPO))
    assert outcome.result == "known"  # only the KMS gap left, already announced
    assert world.registry.writes() == writes
    assert len(world.announcer.published) == announced


def test_drift_is_undone() -> None:
    world = World()
    world.registry.create(REPO, **KMS)
    world.guard().on_api_call(event())
    world.registry.set_mutability(REPO, "MUTABLE", [])
    world.registry.repos[REPO] = world.registry.repos[REPO].__class__(
        **{**world.registry.repos[REPO].__dict__, "lifecycle_text": None}
    )
    outcome = world.guard().on_api_call(event(name="cloudtrail-put-image-tag-mutability.json", repository=REPO))
    assert outcome.result == "enforced"
    assert world.registry.repos[REPO].mutability == "IMMUTABLE"
    assert world.registry.repos[REPO].lifecycle_text is not None


def test_own_calls_are_ignored_without_any_call() -> None:
    world = World()
    world.registry.create(REPO)
    outcome = world.guard().on_api_call(event(role=OWN_ROLE))
    assert outcome.result == "ignored"
    assert sum(world.registry.calls.values()) + sum(world.audit.calls.values()) == 0


def test_a_copied_user_agent_is_not_trusted() -> None:
    world = World()
    world.registry.create(REPO)
    outcome = world.guard().on_api_call(event(userAgent="ecr-warden/0.1.0 fn/ecr-warden-dev-settings-guard"))
    assert outcome.result == "enforced"


def test_audit_mode_changes_nothing_and_says_what_it_would_do() -> None:
    world = World()
    world.registry.create(REPO)
    outcome = world.guard(mode="audit").on_api_call(event())
    assert outcome.result == "would_enforce"
    assert world.registry.writes() == 0
    (decision,) = world.announcer.published
    assert decision.action is Action.WOULD_ENFORCE_SETTINGS
    assert decision.mode == "audit"
    assert not any(c.applied for c in decision.settings_changes)
    again = world.guard(mode="audit").on_api_call(
        event(name="cloudtrail-put-image-tag-mutability.json", repository=REPO)
    )
    assert again.result == "known"
    assert len(world.announcer.published) == 1


@pytest.mark.parametrize(
    ("tags", "owner"),
    [({"aws:cloudformation:stack-name": "team-stack"}, "CloudFormation"), ({"ManagedBy": "terraform"}, "Terraform")],
)
def test_infrastructure_as_code_is_reported_not_changed(tags: dict[str, str], owner: str) -> None:
    world = World()
    world.registry.create(REPO, tags=tags)
    outcome = world.guard().on_api_call(event())
    assert outcome.result == "reported"
    assert world.registry.writes() == 0
    (decision,) = world.announcer.published
    assert decision.action is Action.SETTINGS_REPORTED
    assert any(owner in r for r in decision.reasons)


def test_a_profile_may_opt_infrastructure_as_code_in() -> None:
    document = json.loads(
        json.dumps(
            {
                "rules": [{"name": "d"}],
                "repository_settings": {
                    "profiles": [{"name": "iac", "repositories": ["ses-base/*"], "infrastructure_as_code": "enforce"}]
                },
            }
        )
    )
    world = World()
    world.registry.create(REPO, tags={"aws:cloudformation:stack-name": "s"})
    assert world.guard(parse_policy(json.dumps(document))).on_api_call(event()).result == "enforced"


def test_repositories_outside_managed_patterns_are_never_touched() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "rules": [{"name": "d"}],
                "repository_settings": {"profiles": [{"name": "base", "repositories": ["ses-base/*"]}]},
            }
        )
    )
    world = World()
    world.registry.create("other/app")
    outcome = world.guard(policy).on_api_call(event(repository="other/app"))
    assert outcome.result == "ignored"
    assert sum(world.registry.calls.values()) == 0


def test_a_deleted_repository_is_skipped_and_recorded_once() -> None:
    world = World()
    first = world.guard().on_api_call(event(event_id="gone"))
    second = world.guard().on_api_call(event(event_id="gone"))
    assert (first.result, second.result) == ("skipped", "duplicate")
    assert [item["status"] for item in world.audit.items.values()] == ["SKIPPED"]
    assert world.registry.writes() == 0
    assert not world.announcer.published


def test_duplicate_deliveries_act_once() -> None:
    world = World()
    world.registry.create(REPO)
    results = [world.guard().on_api_call(event(event_id="dup")).result for _ in range(3)]
    assert results == ["enforced", "duplicate", "duplicate"]
    assert len(world.announcer.published) == 1


def test_concurrent_duplicate_deliveries_act_once() -> None:
    world = World()
    world.registry.create(REPO)
    seen: list[str] = []
    world.registry.before("set_mutability", lambda: seen.append(world.guard().on_api_call(event(event_id="c")).result))
    first = world.guard().on_api_call(event(event_id="c"))
    assert (first.result, seen) == ("enforced", ["duplicate"])
    assert world.registry.calls["set_mutability"] == 1
    assert len(world.announcer.published) == 1


FAULT_POINTS = (
    [("registry", c) for c in ("repository", "registry_scanning", *WRITES[:-1])]
    + [("audit", c) for c in ("get", "claim", "finish")]
    + [("announcer", "publish")]
)


@pytest.mark.parametrize(("port", "call"), FAULT_POINTS)
def test_a_failure_at_any_call_is_finished_by_the_retry_and_announced_once(port: str, call: str) -> None:
    world = World()
    world.registry.create(REPO)
    getattr(world, port).inject(call)
    with pytest.raises(Throttled):
        world.guard().on_api_call(event(event_id="retry"))
    world.later()
    world.guard().on_api_call(event(event_id="retry"))  # Lambda's retry of the same event
    assert world.guard().on_api_call(event(event_id="retry")).result == "duplicate"
    repo = world.registry.repos[REPO]
    assert repo.mutability == "IMMUTABLE"
    assert repo.lifecycle_text
    assert repo.policy_text
    assert "Project" in repo.tags
    (decision,) = {d.decision_id: d for d in world.announcer.published}.values()  # the notifier dedupes by id
    assert {"tag_mutability", "lifecycle_policy", "repository_policy", "tags"} <= {
        c.setting for c in decision.settings_changes
    }
    assert [i["status"] for i in world.audit.items.values()] == ["DONE"]


def test_reconcile_fans_out_and_covers_every_managed_repository() -> None:
    world = World()
    for n in range(60):
        world.registry.create(f"ses-base/app-{n:02d}")
    started = world.guard().start_reconcile("run-1")
    assert started.result == "fanned_out"
    assert len(world.fan_out.bodies) == 3
    for body in world.fan_out.bodies:
        message = json.loads(body)
        world.guard().reconcile(message["run_id"], message["repositories"])
    assert all(r.mutability == "IMMUTABLE" for r in world.registry.repos.values())


def test_registry_scanning_is_reported_unless_registry_writes_are_enabled() -> None:
    world = World()
    world.registry.scanning = world.registry.scanning.__class__("BASIC", ())
    world.registry.create(REPO, **KMS)
    outcome = world.guard().on_api_call(event())
    assert "registry scanning" in outcome.reason
    assert world.registry.calls["put_registry_scanning"] == 0
    enabled = parse_policy(
        json.dumps({"rules": [{"name": "d"}], "repository_settings": {"registry_scanning": "enforce"}})
    )
    world.guard(enabled).on_api_call(event(event_id="again"))
    assert world.registry.scanning.scan_type == "ENHANCED"
    assert world.registry.scanning.frequency_for(REPO) == "CONTINUOUS_SCAN"


@pytest.mark.parametrize(
    ("sample", "path"),
    [
        ("cloudtrail-create-repository.json", "person_or_pipeline"),
        ("cloudtrail-create-repository-defaults.json", "person_or_pipeline"),
        ("cloudtrail-create-repository-pull-through-cache.json", "pull_through_cache"),
        ("cloudtrail-create-repository-replication.json", "replication"),
        ("cloudtrail-create-repository-create-on-push.json", "create_on_push"),
    ],
)
def test_creation_paths_are_told_apart(sample: str, path: str) -> None:
    parsed = event(name=sample)
    assert creation_path(parsed.detail, ["docker-hub"]) == path
    world = World()
    world.registry.prefixes = ["docker-hub"]
    world.registry.create(str(parsed.detail.repository_name))
    world.guard().on_api_call(parsed)
    assert world.announcer.published[0].creation_path == path


def test_ensure_keeps_the_teams_rules_and_resolves_priority_clashes() -> None:
    team = lifecycle.LifecycleRule.model_validate(
        {
            "rulePriority": 1,
            "description": "team",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["nightly-"],
                "countType": "imageCountMoreThan",
                "countNumber": 3,
            },
        }
    )
    desired = default_policy().repository_settings.profiles[0].lifecycle.desired_rules("quarantined-")
    merged = lifecycle.merge(desired, [team], "ensure")
    assert [r.rule_priority for r in merged] == list(range(1, 7))
    assert merged[0].identity() == desired[0].identity()
    assert merged[1].description == "team"
    assert lifecycle.merge(desired, merged, "ensure") == merged  # stable: nothing missing, nothing to write
    assert lifecycle.merge(desired, [team], "replace") == desired


def _template(**fields: object) -> dict[str, object]:
    return {"prefix": "docker-hub", "appliedFor": ["PULL_THROUGH_CACHE"], **fields}


def test_the_creation_template_of_a_service_made_repository_is_compared_with_the_policy() -> None:
    world = World()
    world.registry.prefixes = ["docker-hub"]
    world.registry.templates = [_template(imageTagMutability="MUTABLE"), _template(prefix="ROOT")]
    parsed = event(name="cloudtrail-create-repository-pull-through-cache.json")
    world.registry.create("docker-hub/library/nginx")
    world.guard().on_api_call(parsed)
    (decision,) = world.announcer.published
    (note,) = [r for r in decision.reasons if "creation template" in r]
    assert "'docker-hub' differs from the policy: tag mutability MUTABLE" in note


def test_a_matching_creation_template_is_said_to_match() -> None:
    profile = default_policy().repository_settings.profiles[0]
    rules = lifecycle.policy_text(profile.lifecycle.desired_rules("quarantined-"))
    policy = json.dumps(
        {
            "Statement": [
                {
                    "Sid": DENY_ANONYMOUS,
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "ecr:*",
                    "Condition": {
                        "Null": {"aws:PrincipalAccount": "true"},
                        "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                    },
                }
            ]
        }
    )
    matching = _template(
        imageTagMutability="IMMUTABLE",
        lifecyclePolicy=rules,
        repositoryPolicy=policy,
        resourceTags=[{"Key": k, "Value": "x"} for k in profile.tags.required],
        encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/k"},
    )
    from ecr_warden.repository_settings import templates

    assert templates.covering([matching], "docker-hub/library/nginx", "pull_through_cache") is matching
    assert templates.covering([matching], "docker-hub/library/nginx", "replication") is None
    assert templates.note(matching, profile, "pull_through_cache", "quarantined-").endswith("matches the policy")


def test_unreadable_creation_templates_are_said_so() -> None:
    world = World()
    world.registry.templates = None
    world.registry.create("ses-base/new-service")
    world.guard().on_api_call(event(name="cloudtrail-create-repository-create-on-push.json"))
    assert "repository creation templates could not be read" in world.announcer.published[0].reasons


def test_registry_scanning_drift_starts_a_reconcile_run() -> None:
    world = World()
    world.registry.create(REPO)
    outcome = world.guard().on_api_call(event(name="cloudtrail-put-registry-scanning-configuration.json"))
    assert outcome.result == "fanned_out"
    assert json.loads(world.fan_out.bodies[0])["repositories"] == [REPO]


def test_a_failed_fan_out_is_sent_again_by_the_retry() -> None:
    world = World()
    for n in range(300):
        world.registry.create(f"ses-base/app-{n:03d}")
    world.fan_out.inject("send")
    with pytest.raises(Throttled):
        world.guard().start_reconcile("run-2")
    world.guard().start_reconcile("run-2")  # the scheduler's retry
    queued = {r for body in world.fan_out.bodies for r in json.loads(body)["repositories"]}
    assert queued == set(world.registry.repos)


def test_ten_thousand_repositories_fan_out_in_a_bounded_number_of_calls() -> None:
    world = World()
    for n in range(10_000):
        world.registry.create(f"ses-base/app-{n:05d}")
    assert world.guard().start_reconcile("big").result == "fanned_out"
    assert len(world.fan_out.bodies) == 400  # 25 repositories a message: each batch is a short invocation
    assert world.fan_out.calls["send"] == 40  # SendMessageBatch takes 10 messages
    assert sum(world.registry.calls.values()) == 1  # the listing (DescribeRepositories pages of 1,000: 10 calls)


def test_tags_of_other_ecr_resources_are_ignored_not_parked() -> None:
    world = World()
    raw = cloudtrail(name="cloudtrail-create-repository-defaults.json", eventName="TagResource")
    raw["detail"]["requestParameters"] = {"resourceArn": "arn:aws:ecr:us-east-1:123456789012:pull-through-cache/x"}
    parsed = parse_aws_event(raw)
    assert isinstance(parsed, CloudTrailEcrEvent)
    assert world.guard().on_api_call(parsed).result == "ignored"
    assert sum(world.registry.calls.values()) == 0
