"""Admin function: release, quarantine, exempt, rescan, enforce, report, sweep and runs on request (`aws lambda
invoke`, the CLI), and the steps of runs over many registries (the run queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ecr_warden.admin.entry import process, process_run_steps
from ecr_warden.observability import logger, metrics
from ecr_warden.settings import AdminSettings

if TYPE_CHECKING:  # a type only: Powertools' typing package stays off the cold start
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS = AdminSettings.from_env()  # a missing variable fails the cold start, naming it


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    account = context.invoked_function_arn.split(":")[4]  # arn:aws:lambda:<region>:<account>:function:<name>
    if isinstance(event, dict) and "Records" in event:  # the run queue (ecr_warden.runs)
        return process_run_steps(event, SETTINGS, account=account)
    return process(event, SETTINGS, account=account, request_id=context.aws_request_id)
