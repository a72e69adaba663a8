"""The settings guard's use cases: an ECR API call seen by CloudTrail, a reconcile run started by the schedule, and
a batch of repositories to reconcile from the fan-out queue.

For one repository and one trigger: read ECR, evaluate (pure), and when something differs claim the trigger in the
audit table (a concurrent duplicate then does nothing), write only what differs (enforce mode), record before ->
after, and announce the decision. A failure records what was already changed and raises; the retry re-reads ECR,
finishes, and announces everything the trigger changed, once (the decision id is derived from the trigger)."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from ecr_warden.contracts.aws_events import CloudTrailEcrDetail, CloudTrailEcrEvent
from ecr_warden.contracts.common import RepositoryName
from ecr_warden.contracts.decision import Action
from ecr_warden.errors import EventValidationError
from ecr_warden.repository_settings import templates
from ecr_warden.repository_settings.actions import ACTIONS
from ecr_warden.repository_settings.context import Outcome, SettingsContext, Trigger
from ecr_warden.repository_settings.decisions import action_of, decision_detail, fingerprint, merge_change
from ecr_warden.repository_settings.desired import RepositorySettings
from ecr_warden.repository_settings.evaluate import evaluate, with_replication
from ecr_warden.repository_settings.origin import creation_path, is_own_call, made_by_ecr
from ecr_warden.repository_settings.ports import Prior, SettingsPorts
from ecr_warden.repository_settings.state import Plan, RegistryScanning, ReplicationRule, RepositoryState

# A claim lapses after the function's timeout (template.yaml: 60 s), so no live attempt outlives it, and before Lambda
# retries an event (a minute or more later) or SQS delivers a message again (its visibility timeout): a duplicate
# delivered meanwhile finds it held, a retry takes it over.
LEASE_SECONDS = 60
BATCH_SIZE = 25  # repositories per fan-out message: 10,000 repositories are 400 messages


class SettingsGuard:
    def __init__(self, ctx: SettingsContext, ports: SettingsPorts) -> None:
        self.ctx, self.ports = ctx, ports
        self._scanning: tuple[RegistryScanning | None] | None = None
        self._replication: tuple[tuple[ReplicationRule, ...] | None] | None = None

    @property
    def settings(self) -> RepositorySettings:
        return self.ctx.policy.repository_settings

    def on_api_call(self, event: CloudTrailEcrEvent) -> Outcome:
        detail = event.detail
        if detail.error_code:
            return Outcome("ignored", None, f"the call failed ({detail.error_code[:100]}): nothing changed")
        if is_own_call(detail, self.ctx.own_roles):
            return Outcome("ignored", None, "ecr-warden's own call")
        if detail.event_name == "PutRegistryScanningConfiguration":
            return self.start_reconcile(f"registry#{detail.event_id}")
        arn = (detail.request_parameters or {}).get("resourceArn")
        if isinstance(arn, str) and arn.startswith("arn:") and ":repository/" not in arn:
            return Outcome("ignored", None, "tags of a resource that is not a repository")
        repository = _repository_of(event)
        if not self._managed(repository):
            reason = "no repository_settings profile matches, or outside GovernedRepositories: not managed"
            return Outcome("ignored", repository, reason)
        path = None
        if detail.event_name == "CreateRepository":
            path = creation_path(detail, self._pull_through_prefixes(detail))
        return self.guard(repository, Trigger(detail.event_id, detail.event_name, path))

    def _pull_through_prefixes(self, detail: CloudTrailEcrDetail) -> list[str]:
        return self.ports.registry.pull_through_prefixes() if made_by_ecr(detail) else []

    def start_reconcile(self, run_id: str) -> Outcome:
        """Fan every managed repository out to the queue, BATCH_SIZE a message; nothing is evaluated here, so a
        registry of any size is listed within one invocation."""
        if self.ports.fan_out is None:
            raise RuntimeError("reconcile needs the fan-out queue")
        managed = (name for name in self.ports.registry.repository_names() if self._managed(name))
        count = 0
        for chunk in _chunks(managed, BATCH_SIZE * 10):
            bodies = [
                json.dumps(
                    {
                        "kind": "reconcile",
                        "run_id": run_id,
                        "account": self.ctx.account,
                        "region": self.ctx.region,
                        "repositories": chunk[i : i + BATCH_SIZE],
                    }
                )
                for i in range(0, len(chunk), BATCH_SIZE)
            ]
            self.ports.fan_out.send(bodies)
            count += len(chunk)
        return Outcome("fanned_out", None, f"{count} managed repositories queued for reconcile run {run_id}")

    def reconcile(self, run_id: str, repositories: list[str]) -> list[Outcome]:
        trigger = Trigger(f"reconcile#{run_id}", "reconcile")
        return [self.guard(name, trigger) for name in repositories if self._managed(name)]

    def _governed(self, repository: str) -> bool:
        return fnmatch.fnmatchcase(repository, self.ctx.governed_repositories)

    def _managed(self, repository: str) -> bool:
        """A profile of the policy covers it, and the deployment may change it (GovernedRepositories)."""
        return self.settings.profile_for(repository) is not None and self._governed(repository)

    def guard(self, repository: str, trigger: Trigger) -> Outcome:
        audit = self.ports.audit
        prior = audit.get(repository, trigger.id)
        if prior is not None and prior.status in ("DONE", "SKIPPED"):
            return Outcome("duplicate", repository, f"{trigger.id} already handled")
        actual = self.ports.registry.repository(repository)
        if actual is None:
            entry = {"status": "SKIPPED", "trigger": trigger.name, "reason": "repository no longer exists"}
            audit.finish(repository, trigger.id, entry)
            return Outcome("skipped", repository, "repository no longer exists")
        plan = self._evaluate(actual, trigger)
        if prior is None and not (self.ctx.mode == "enforce" and plan.changes):
            # Nothing to write: announce the gaps (or, in audit mode, the changes not made) only when they are new,
            # not at every event and every daily reconcile.
            if plan.compliant:
                return Outcome("compliant", repository)
            if not audit.remember_report(repository, fingerprint(self.ctx.mode, plan)):
                return Outcome("known", repository, "; ".join(plan.reports))
        if not audit.claim(repository, trigger.id, self.ctx.now(), LEASE_SECONDS):
            return Outcome("duplicate", repository, "another delivery of the same trigger is handling it")
        return self._act(actual, plan, trigger, prior)

    def _evaluate(self, actual: RepositoryState, trigger: Trigger) -> Plan:
        profile = self.settings.profile_for(actual.name)
        assert profile is not None
        if self._scanning is None:
            self._scanning = (self.ports.registry.registry_scanning(),)
        writes = self.settings.registry_scanning == "enforce"
        prefix = self.ctx.policy.quarantine_tag_prefix
        plan = with_replication(evaluate(profile, actual, self._scanning[0], prefix, writes), profile, self._rules())
        path = trigger.creation_path
        if path not in templates.APPLIED_FOR:
            return plan
        found = self.ports.registry.creation_templates()
        if found is None:
            return replace(plan, notes=(*plan.notes, "repository creation templates could not be read"))
        template = templates.covering(found, actual.name, str(path))
        return replace(plan, notes=(*plan.notes, templates.note(template, profile, str(path), prefix)))

    def _rules(self) -> tuple[ReplicationRule, ...] | None:
        """The registry's replication rules, read once per guard; a registry that cannot say (an emulator, a fake
        without the call) has none to report."""
        if self._replication is None:
            read = getattr(self.ports.registry, "registry_replication", None)
            self._replication = (read() if read else None,)
        return self._replication[0]

    def _act(self, actual: RepositoryState, plan: Plan, trigger: Trigger, prior: Prior | None) -> Outcome:
        done: list[dict[str, Any]] = list(prior.changes if prior else ())
        enforce = self.ctx.mode == "enforce"
        try:
            for change in plan.changes:
                # counted before the call: a write that took effect but whose answer was lost is still announced
                done = merge_change(done, change, applied=enforce)
                if enforce:
                    ACTIONS[change.setting].apply(self.ports.registry, actual, change)
            action = action_of(enforce, done, plan)
            detail = decision_detail(self.ctx, actual.name, plan, trigger, done, action)
            self.ports.announcer.publish(detail)
            entry = {
                "status": "DONE",
                "trigger": trigger.name,
                "action": action.value,
                "changes": done,
                "reports": list(plan.reports),
                "decision_id": detail.decision_id,
                "mode": self.ctx.mode,
                "profile": plan.profile,
                "creation_path": trigger.creation_path,
            }
            self.ports.audit.finish(actual.name, trigger.id, entry)
        except Exception:
            self.ports.audit.fail(actual.name, trigger.id, done)
            raise
        if enforce and plan.reports:  # the gaps left are announced with this decision: not again by the next run
            self.ports.audit.remember_report(actual.name, fingerprint(self.ctx.mode, replace(plan, changes=())))
        result = {Action.SETTINGS_ENFORCED: "enforced", Action.WOULD_ENFORCE_SETTINGS: "would_enforce"}
        return Outcome(
            result.get(action, "reported"),
            actual.name,
            "; ".join(plan.reports),
            tuple(f"{c['setting']}: {c['before']} -> {c['after']}" for c in done),
        )


def _repository_of(event: CloudTrailEcrEvent) -> str:
    """The repository the call was about, checked as ECR names repositories (a forged name never reaches ECR)."""
    from pydantic import TypeAdapter, ValidationError

    where = "detail.requestParameters.repositoryName"
    try:
        name = event.detail.repository_name
        if name is None:
            raise EventValidationError(what=event.detail_type, field=where, reason="names no repository")
        return str(TypeAdapter(RepositoryName).validate_python(name))
    except (ValueError, ValidationError) as exc:
        reason = str(exc).splitlines()[-1][:200] if str(exc) else type(exc).__name__
        raise EventValidationError(what=event.detail_type, field=where, reason=reason) from None


def _chunks(items: Iterator[str] | Any, size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
