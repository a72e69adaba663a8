"""Carrying out a plan: write the record ahead, change ECR, count it, announce it. The only gate module that
calls the registry's write methods."""

from __future__ import annotations

from dataclasses import dataclass

from ecr_warden.contracts.decision import DecisionDetail
from ecr_warden.domain.images import ImageRef
from ecr_warden.errors import WardenError
from ecr_warden.gate.announce import decision_detail
from ecr_warden.gate.context import GateContext, Outcome, Trigger
from ecr_warden.gate.evaluate import Decision
from ecr_warden.gate.plan import AddTag, Archive, Effect, Plan, RemoveTags
from ecr_warden.gate.ports import Ports
from ecr_warden.observability import MetricUnit, logger, metrics


class PartialActionError(WardenError):
    """Some of an action's ECR calls failed; the event is retried and the retry completes it."""


@dataclass
class Executor:
    ctx: GateContext
    ports: Ports

    def run(self, plan: Plan, decision: Decision, trigger: Trigger) -> Outcome:
        record = plan.record
        self.ports.store.save(record, plan.expected_version, plan.claims)  # write-ahead: before ECR is touched
        image = ImageRef(record.repository, record.digest)
        for effect in plan.effects:
            self.apply(image, effect)
        if plan.metric:
            metrics.add_metric(name=plan.metric, unit=MetricUnit.Count, value=1)
        if plan.effects:
            logger.info(
                "image changed",
                repository=image.repository,
                digest=image.digest,
                action=plan.action.value,
                effects=[type(effect).__name__ for effect in plan.effects],
            )
        detail = self.announce(plan, decision, trigger) if plan.announce else None
        return Outcome(image.repository, image.digest, plan.action, plan.reason, record.status, detail)

    def apply(self, image: ImageRef, effect: Effect) -> None:
        registry = self.ports.registry
        if isinstance(effect, AddTag):
            registry.add_tag(image.repository, image.digest, effect.manifest, effect.tag)
        elif isinstance(effect, RemoveTags):
            if not effect.tags:
                return
            failures = registry.remove_tags(image.repository, list(effect.tags))
            if failures:
                raise PartialActionError(f"{image}: could not remove tags: {'; '.join(failures)}")
        elif isinstance(effect, Archive):
            registry.archive(image.repository, image.digest)

    def announce(self, plan: Plan, decision: Decision, trigger: Trigger) -> DecisionDetail:
        detail = decision_detail(self.ctx, plan, decision, trigger)
        self.ports.announcer.publish(detail)
        return detail
