"""`run`: reconcile, sweep or report over many registries at once (accounts x regions), fanned out on the run
queue (ecr_warden.runs), and the progress of such a run.

    {"action": "run", "operation": "start", "job": "sweep", "accounts": "organization", "regions": [...], "by": ...}
    {"action": "run", "operation": "status", "run_id": "...", ["rows": 50,] "by": ...}

`accounts`: "self" (this deployment's account, the default), "organization" (every ACTIVE account the
Organizations API lists: organization mode only) or a list of account ids. `regions`: the deployment's run
regions (template parameter OrganizationRegions) unless given. A single-account deployment runs in its own
account and region only. The run id is the request's (a retried invocation starts the same run again: nothing is
queued or counted twice)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ecr_warden.actions.registry import AdminAction, RequestRejected, Who, Why, register_admin
from ecr_warden.errors import ConfigurationError
from ecr_warden.runs.model import ACCOUNT, REGION, RUN_ID, Job
from ecr_warden.runs.service import RunRefused, scopes_of

if TYPE_CHECKING:
    from ecr_warden.admin.ports import AdminTools

AccountId = Annotated[str, StringConstraints(pattern=ACCOUNT)]
RegionName = Annotated[str, StringConstraints(pattern=REGION)]
RunId = Annotated[str, StringConstraints(pattern=RUN_ID)]


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: Literal["start", "status"]
    job: Job | None = None  # start
    accounts: Literal["self", "organization"] | list[AccountId] = "self"
    regions: list[RegionName] | None = Field(None, min_length=1, max_length=40)
    run_id: RunId | None = None  # status
    rows: int = Field(0, strict=True, ge=0, le=1000)  # status: the findings rows to include
    reason: Why | None = None
    by: Who


class AdminRun(RunRequest):
    """The admin function's `run` payload (admin/requests.py)."""

    action: Literal["run"]


@register_admin
class Run(AdminAction[RunRequest]):
    name = "run"
    input_model = RunRequest
    admin_model = AdminRun
    # its admin-log entry, the run's progress (the audit table) and the first steps (the run queue); listing the
    # organization's accounts is granted with organization mode only (template.yaml OrganizationRunsPolicy)
    permissions: ClassVar[frozenset[str]] = frozenset(
        {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem", "sqs:SendMessage"}
    )
    # a start is logged (compact); a status is a read, polled every few seconds by --wait: not logged
    logs_itself: ClassVar[bool] = True

    def check(self, request: RunRequest) -> None:
        if request.operation == "start" and request.job is None:
            raise RequestRejected("job", "give the job to run: reconcile, sweep or report")
        if request.operation == "status" and request.run_id is None:
            raise RequestRejected("run_id", "give the id `run start` answered")
        if request.operation == "start" and request.run_id is not None:
            raise RequestRejected("run_id", "a new run's id is the request's own; give it with status only")

    def run(self, request: RunRequest, tools: AdminTools) -> dict[str, Any]:
        runs = tools.runs
        if runs is None:
            raise ConfigurationError("this deployment has no run queue (RUN_QUEUE_URL)")
        if request.operation == "status":
            assert request.run_id is not None
            status = runs.engine.ports.progress.status(request.run_id)
            if status is None:
                raise RequestRejected("run_id", f"no run {request.run_id} (runs are kept 90 days)")
            answer = status.as_dict()
            if request.rows:
                answer["rows"] = runs.engine.ports.progress.rows(request.run_id, request.rows)
            return answer
        assert request.job is not None
        accounts = self._accounts(request, tools)
        regions = list(request.regions or runs.regions or (tools.region,))
        unknown = sorted(set(regions) - known_regions())
        if unknown:
            raise RequestRejected("regions", f"{', '.join(unknown)}: not a region ECR is offered in")
        if not runs.organization and (accounts != [tools.account] or regions != [tools.region]):
            raise RequestRejected(
                "accounts" if accounts != [tools.account] else "regions",
                f"a single-account deployment runs in {tools.account}/{tools.region} only (organization mode: "
                "deploy with OrganizationId, docs/ORGANIZATION.md)",
            )
        run_id = f"{request.job}-{re.sub(r'[^A-Za-z0-9._:-]', '-', tools.request_id)}"[:100]
        try:
            started = runs.engine.start(run_id, request.job, scopes_of(accounts, regions), tools.who, request.reason)
        except RunRefused as refused:
            raise RequestRejected(refused.field, refused.message) from None
        logged = request.model_dump(mode="json", exclude_none=True)
        tools.exemptions.record(tools.log_entry("run", logged, request.reason, started))
        return started

    @staticmethod
    def _accounts(request: RunRequest, tools: AdminTools) -> list[str]:
        if request.accounts == "self":
            return [tools.account]
        if isinstance(request.accounts, list):
            if not request.accounts:
                raise RequestRejected("accounts", "give at least one account id")
            return request.accounts
        directory = tools.runs.engine.ports.directory if tools.runs else None
        if directory is None:
            raise RequestRejected("accounts", "'organization' needs organization mode (OrganizationId)")
        return directory.accounts()


def known_regions() -> set[str]:
    """The regions botocore knows ECR in (its endpoint data, no call): a typo is refused at the start, not found
    by every step of the run failing to connect."""
    import boto3

    session = boto3.Session()
    return {
        region
        for partition in ("aws", "aws-cn", "aws-us-gov")
        for region in session.get_available_regions("ecr", partition_name=partition)
    }
