"""Dispatch of one admin request to its registered action, with its admin-log entry: release and quarantine run on
the gate's Actor (write-ahead record, outbox, announcement), the others on the admin tools. A request the state
refuses (RequestRejected) changes nothing; a record written concurrently (a scan event for the same image) makes the
action re-read and decide again once, as the gate does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ecr_warden.actions.registry import GATE_ACTIONS, RequestRejected, admin_action, find
from ecr_warden.errors import ConcurrentUpdateError

if TYPE_CHECKING:
    from ecr_warden.actions.quarantine import AdminQuarantine
    from ecr_warden.admin.ports import AdminTools
    from ecr_warden.admin.requests import AdminRequest
    from ecr_warden.gate.context import Outcome

T = TypeVar("T")


@dataclass
class AdminService:
    tools: AdminTools

    def check(self, request: AdminRequest) -> None:
        """What the request alone can tell, before any AWS call."""
        if request.action not in GATE_ACTIONS:
            admin_action(request.action).check(request)
        elif request.action == "quarantine" and (request.digest is None) == (request.tag is None):
            raise RequestRejected("digest", "give the image's digest or its tag (exactly one)")

    def handle(self, request: AdminRequest) -> dict[str, Any]:
        self.check(request)
        reason = getattr(request, "reason", None)
        logged = request.model_dump(mode="json", exclude_none=True)
        if request.action in GATE_ACTIONS:
            repository = str(getattr(request, "repository", ""))
            if not self.tools.governs(repository):
                raise RequestRejected("repository", f"{repository}: outside the repositories ecr-warden guards")
            result = _report(self._on_gate(request))
        else:
            action = admin_action(request.action)
            result = self._retrying(lambda: action.run(request, self.tools))
            if getattr(action, "logs_itself", False):
                return result
        self.tools.exemptions.record(self.tools.log_entry(request.action, logged, reason, result))
        return result

    def _on_gate(self, request: AdminRequest) -> Outcome:
        from ecr_warden.actions.quarantine import QuarantineRequest, governed
        from ecr_warden.actions.release import ReleaseRequest

        actor, tools = self.tools.gate.actor, self.tools
        if request.action == "release":
            release = ReleaseRequest.model_construct(
                repository=request.repository, digest=request.digest, reason=request.reason, by=tools.who
            )
            return self._retrying(lambda: find("release").run(release, actor))
        assert request.action == "quarantine"
        governed(actor, request.repository)
        digest = request.digest or self._resolve_tag(request)
        quarantine = QuarantineRequest.model_construct(
            repository=request.repository, digest=digest, tag=None, reason=request.reason, by=tools.who,
            request_id=tools.request_id,
        )  # fmt: skip
        return self._retrying(lambda: find("quarantine").run(quarantine, actor))

    def _resolve_tag(self, request: AdminQuarantine) -> str:
        """The digest the tag names, written ahead in the admin log: the quarantine takes the tag away, so Lambda's
        retry of this request finds the digest there, not in ECR."""
        tools, repository, tag = self.tools, request.repository, str(request.tag)
        earlier = tools.exemptions.logged(tools.request_id)
        if earlier is not None and earlier.get("resolved_digest"):
            return str(earlier["resolved_digest"])
        digest = tools.gate.ports.registry.digest_of(repository, tag)
        if digest is None:
            raise RequestRejected("tag", f"{repository}:{tag} does not exist (no such tag or repository)")
        logged = request.model_dump(mode="json", exclude_none=True)
        ahead = tools.log_entry(request.action, logged, request.reason, {"state": "started"})
        tools.exemptions.record({**ahead, "resolved_digest": digest})
        return digest

    @staticmethod
    def _retrying(run: Callable[[], T]) -> T:
        for attempt in (1, 2):
            try:
                return run()
            except ConcurrentUpdateError:  # another writer (a scan event) won the race: re-read, decide again once
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _report(outcome: Outcome) -> dict[str, Any]:
    """What ECR now looks like after a release or quarantine, for people and the CLI."""
    from ecr_warden.contracts.decision import Action  # loaded by the gate's actions already; not by the others

    result: dict[str, Any] = {
        "outcome": outcome.action.value,
        "status": str(outcome.status) if outcome.status else None,
        "repository": outcome.repository,
        "digest": outcome.digest,
        "reason": outcome.reason,
    }
    detail = outcome.announced
    if detail is not None and outcome.action in (Action.RELEASED, Action.RELEASE_INCOMPLETE):
        result["restored"] = list(detail.tags)
        result["not_restored"] = dict(detail.not_restored)
    if detail is not None:
        result["decision_id"] = detail.decision_id
    return result
