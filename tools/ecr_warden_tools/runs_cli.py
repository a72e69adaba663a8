"""`ecr-warden run start|status`: reconcile, sweep or report over many registries (accounts x regions) through the
admin function, and a run's progress. The run itself is carried out by the admin function's run queue, not here:
this command starts it (and, with --wait, follows its progress until every step is counted)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

EPILOG = (
    "exit codes: 0 done (start: queued; status: every step counted), 1 refused, 2 invalid request, error or run "
    "aborted, 4 still running (status without --wait, --wait timed out, or no progress for 15 minutes), 5 done but "
    "some registries were unreachable"
)
EXIT_RUNNING, EXIT_UNREACHABLE = 4, 5
POLL_SECONDS = 5.0
STALLED_SECONDS = 900.0  # no step counted for this long: a step is probably parked in the run dead-letter queue
FINISHED = ("done", "done_with_unreachable", "aborted")


def commands(sub: Any, through_admin: Callable[..., None]) -> None:
    run = sub.add_parser(
        "run",
        help="reconcile, sweep or report over many registries (accounts x regions) on the run queue, and progress",
        description="Runs fan out on the admin function's FIFO run queue: one message group per registry "
        "(account#region), so each registry sees one caller at a time. Organization mode (OrganizationId) is needed "
        "for other accounts and regions; see docs/ORGANIZATION.md.",
    )
    operations = run.add_subparsers(dest="operation", required=True)
    start = operations.add_parser("start", help="start a run; prints its id", epilog=EPILOG)
    start.add_argument("job", choices=("reconcile", "sweep", "report"), help="what each registry gets")
    start.add_argument(
        "--accounts", default="self",
        help="'self' (the deployment's account, default), 'organization' (every ACTIVE account of the "
        "organization) or comma-separated account ids",
    )  # fmt: skip
    start.add_argument(
        "--regions", default=None,
        help="comma-separated regions to cover (default: the deployment's OrganizationRegions, else its region); "
        "not to be confused with --region, where the deployment is",
    )  # fmt: skip
    start.add_argument("--reason", required=True, help="why (recorded in the admin log)")
    start.add_argument("--wait", action="store_true", help="follow the run's progress until it is done")
    start.add_argument("--timeout", type=float, default=3600.0, help="with --wait: give up after this many seconds")
    through_admin(start, cmd_run, registry=False)
    status = operations.add_parser("status", help="a run's progress and findings", epilog=EPILOG)
    status.add_argument("run_id", help="the id `run start` printed")
    status.add_argument("--rows", type=int, default=20, help="findings rows to show (0..1000, default 20)")
    status.add_argument("--wait", action="store_true", help="follow the run's progress until it is done")
    status.add_argument("--timeout", type=float, default=3600.0, help="with --wait: give up after this many seconds")
    through_admin(status, cmd_run, registry=False)


def _accounts(text: str) -> str | list[str]:
    if text in ("self", "organization"):
        return text
    return [part.strip() for part in text.split(",") if part.strip()]


Ask = Callable[[dict[str, Any]], "dict[str, Any] | int"]


def cmd_run(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin_client import EXIT_ERROR, EXIT_REFUSED, caller
    from ecr_warden_tools.cli import _admin_client

    client, by = _admin_client(args), caller(args)

    def ask(payload: dict[str, Any]) -> dict[str, Any] | int:
        answer = client.call({"action": "run", "by": by, **payload})
        if answer.get("ok"):
            return dict(answer["result"])
        error = answer.get("error") or {}
        where = f" ({error['field']})" if error.get("field") not in (None, "<root>") else ""
        print(f"ecr-warden: {error.get('type', 'error')}{where}: {error.get('message', answer)}", file=sys.stderr)
        return EXIT_REFUSED if error.get("type") == "rejected" else EXIT_ERROR

    if args.operation == "status":
        return _follow(args, ask, args.run_id, args.rows)
    started = _start(args, ask)
    if isinstance(started, int):
        return started
    return _follow(args, ask, started, 20)


def _start(args: argparse.Namespace, ask: Ask) -> str | int:
    """The new run's id, or the exit code (refused, or done: started without --wait)."""
    from ecr_warden_tools.admin_client import EXIT_OK

    payload: dict[str, Any] = {"operation": "start", "job": args.job, "accounts": _accounts(args.accounts),
                               "reason": args.reason}  # fmt: skip
    if args.regions:
        payload["regions"] = [r.strip() for r in args.regions.split(",") if r.strip()]
    started = ask(payload)
    if isinstance(started, int):
        return started
    if args.json and not args.wait:
        print(json.dumps(started, indent=2))
        return EXIT_OK
    print(f"run {started['run_id']}: {started['job']} over {started['registries']} registries queued")
    if not args.wait:
        print(f"follow it: ecr-warden run status {started['run_id']} --wait", file=sys.stderr)
        return EXIT_OK
    return str(started["run_id"])


def _follow(args: argparse.Namespace, ask: Ask, run_id: str, rows: int) -> int:
    from ecr_warden_tools.admin_client import EXIT_ERROR, EXIT_OK

    deadline = time.monotonic() + args.timeout
    progress, moved = None, time.monotonic()
    while True:
        status = ask({"operation": "status", "run_id": run_id, "rows": max(0, min(rows, 1000))})
        if isinstance(status, int):
            return status
        if status.get("updated_at") != progress:
            progress, moved = status.get("updated_at"), time.monotonic()
        stalled = time.monotonic() - moved > STALLED_SECONDS
        if status["state"] in FINISHED or not args.wait or time.monotonic() > deadline or stalled:
            break
        print(_progress(status), file=sys.stderr)
        time.sleep(POLL_SECONDS)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        _print(status)
    if stalled:
        print(f"no step counted for {STALLED_SECONDS / 60:.0f} minutes: look in the run dead-letter queue "
              "(output RunDeadLetterQueueUrl) and redrive it to resume", file=sys.stderr)  # fmt: skip
    codes = {"done": EXIT_OK, "done_with_unreachable": EXIT_UNREACHABLE, "aborted": EXIT_ERROR}
    return codes.get(status["state"], EXIT_RUNNING)


def _progress(status: dict[str, Any]) -> str:
    r, b = status["registries"], status["batches"]
    return (f"{status['run_id']}: registries {r['listed'] + r['failed']}/{r['total']} listed, batches "
            f"{b['done']}/{b['queued']} done, {status['repositories']['done']} repositories")  # fmt: skip


def _print(status: dict[str, Any]) -> None:
    print(f"run {status['run_id']} ({status['job']}, by {status['by']}, started {status['started_at']}): "
          f"{status['state']}")  # fmt: skip
    print(_progress(status))
    for kind, count in status["counts"].items():
        print(f"{count:>7}  {kind}")
    for scope, why in status["failed_registries"].items():
        print(f"unreachable: {scope}: {why}")
    for row in status.get("rows", []):
        where = f"{row.get('account')}/{row.get('region')} {row.get('repository', '')}"
        what = row.get("kind") or row.get("result") or ""
        detail = row.get("error") or row.get("reason") or "; ".join(row.get("changes", []) + row.get("reports", []))
        print(f"  {what:<18} {where}{('@' + row['digest']) if row.get('digest') else ''}  {detail}"[:220])
    if status["state"] == "done_with_unreachable":
        print(f"{status['registries']['failed']} registries could not be read (above): deploy the member stack "
              "there, or leave them out of --accounts/--regions", file=sys.stderr)  # fmt: skip
    if status["state"] == "aborted":
        print(f"the run was aborted while starting: {status.get('aborted')}; start a new one", file=sys.stderr)
    elif status["state"] not in FINISHED:
        pending = status["batches"]["pending"] + status["registries"]["pending"]
        print(f"{pending} step(s) not counted yet; a step that failed five times waits in the run dead-letter queue "
              "(redrive it to resume: aws sqs start-message-move-task)", file=sys.stderr)  # fmt: skip
