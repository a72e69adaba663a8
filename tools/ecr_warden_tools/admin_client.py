"""The CLI's side of the admin function: build a request, invoke `ecr-warden-<env>-admin`, print the answer.

An admin needs `lambda:InvokeFunction` on that one function (docs/admin-policy.json), not ECR write rights: the
function acts, checks and records. `--in-process` runs the same code with the caller's own credentials instead
(break-glass, when the function itself is broken; it needs the function's permissions).

Exit codes: 0 done; 1 refused (the request was valid but the state it met was not: unknown image, exemption
already active, ...); 2 invalid request, configuration or AWS error; 3 a release that could not restore every tag.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

EXIT_OK, EXIT_REFUSED, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2, 3


@dataclass(frozen=True)
class AdminClient:
    environment: str
    region: str
    in_process: bool = False
    function_name: str | None = None
    # organization mode: the registry a request acts in (the image's account and region); None: the deployment's
    account: str | None = None
    registry_region: str | None = None

    @property
    def name(self) -> str:
        return self.function_name or f"ecr-warden-{self.environment}-admin"

    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("action") != "run":  # a run names its registries itself
            where = {"account": self.account, "region": self.registry_region}
            payload = {**payload, **{k: v for k, v in where.items() if v}}
        return self._in_process(payload) if self.in_process else self._invoke(payload)

    def _invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = _lambda(self.region).invoke(FunctionName=self.name, Payload=json.dumps(payload).encode())
        body = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):  # the function failed (not a refusal): its error, in one line
            message = body.get("errorMessage", "unknown error") if isinstance(body, dict) else str(body)
            return {"ok": False, "error": {"type": "function_error", "field": "<root>", "message": message}}
        return body if isinstance(body, dict) else {"ok": False, "error": {"type": "function_error", "message": body}}

    def _in_process(self, payload: dict[str, Any]) -> dict[str, Any]:
        from ecr_warden.adapters.aws import client
        from ecr_warden.admin.entry import process
        from ecr_warden.settings import AdminSettings

        identity = client("sts").get_caller_identity()
        account = str(identity["Account"])
        queue = f"https://sqs.{self.region}.amazonaws.com/{account}/ecr-warden-{self.environment}-settings-reconcile"
        settings = AdminSettings(
            environment=self.environment,
            region=self.region,
            audit_table_name=f"ecr-warden-{self.environment}-audit-v2",
            decision_bus_name=f"ecr-warden-{self.environment}",
            reconcile_queue_url=queue,
            run_queue_url=queue.replace("-settings-reconcile", "-runs.fifo"),
            policy_parameter_name=f"/ecr-warden/{self.environment}/policy",
        )
        # STS verified who is calling: recorded as a verified identity, unlike a plain invoke's `by`
        return process(payload, settings, account, verified_identity=str(identity["Arn"]))


def _lambda(region: str) -> Any:
    """A Lambda client that waits for the function's answer (its timeout is 60 s) and never sends a request twice:
    botocore's retries would resend an invocation whose answer was merely slow, and every resend is a new request
    (a second run started, a second admin-log entry)."""
    import boto3
    from botocore.config import Config

    from ecr_warden.adapters.aws import user_agent_extra

    config = Config(read_timeout=90, connect_timeout=10, retries={"mode": "standard", "max_attempts": 1},
                    user_agent_extra=user_agent_extra())  # fmt: skip
    return boto3.client("lambda", region_name=region, config=config)


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", default=None, help="who asks (audit trail; default: your AWS identity's ARN)")
    parser.add_argument("--json", action="store_true", help="print the function's whole answer as JSON")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the action here with your own credentials instead of invoking the admin function (break-glass)",
    )
    parser.add_argument("--function-name", help="the admin function (default: ecr-warden-<environment>-admin)")


def caller(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    from ecr_warden.adapters.aws import client

    return str(client("sts").get_caller_identity()["Arn"])


def run(args: argparse.Namespace, client: AdminClient, payload: dict[str, Any]) -> int:
    """Send the request, print the answer (a table-like summary, or --json), return the exit code."""
    answer = client.call({**payload, "by": caller(args)})
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
    if not answer.get("ok"):
        error = answer.get("error") or {}
        where = f" ({error['field']})" if error.get("field") not in (None, "<root>") else ""
        print(f"ecr-warden: {error.get('type', 'error')}{where}: {error.get('message', answer)}", file=sys.stderr)
        return EXIT_REFUSED if error.get("type") == "rejected" else EXIT_ERROR
    result = answer.get("result") or {}
    if not args.json:
        _print_result(payload["action"], result)
    if result.get("outcome") == "release_incomplete":
        # the reason says what ECR looks like now (tags on other images or deleted, the image itself gone) and what
        # to do; the digest is what an admin deploys by
        print(f"ecr-warden: release incomplete: {result.get('reason') or 'not every recorded tag is back'}\n"
              f"the image: {payload['repository']}@{result.get('digest')}", file=sys.stderr)  # fmt: skip
        return EXIT_INCOMPLETE
    return EXIT_OK


def _print_result(action: str, result: dict[str, Any]) -> None:
    if action in ("release", "quarantine"):
        print(f"{result.get('outcome')}: {result.get('repository')}@{result.get('digest')} ({result.get('reason')})")
        if action == "release":
            print(f"restored tags: {', '.join(result.get('restored') or []) or '(none)'}")
        return
    if isinstance(result.get("exemptions"), list):
        rows = result["exemptions"]
        print(f"{len(rows)} exemption(s)")
        for row in rows:
            scope = f"{row.get('repository')}@{(row.get('digest') or '*')[:19]}"
            print(f"  {row.get('cve'):<20} {scope:<50} until {row.get('expires')}  by {row.get('approver')}")
        return
    for key, value in result.items():
        print(f"{key}: {json.dumps(value, default=str) if isinstance(value, dict | list) else value}")
