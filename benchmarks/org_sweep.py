"""A sweep run across an organization on the local stack (issue 12): `accounts` accounts (the central one and
members) x `regions` regions x `repositories` repositories each, swept by the admin function's run queue as deployed
(one message group per registry, RunConcurrency steps at once), next to a bare loop over the same repositories.

Prints wall time, AWS calls per repository (ECR and all services; counted at the local endpoint), peak concurrent
steps overall, per registry and per account (from the local stack's event-source log), and the same for the bare
loop: DescribeRepositories pages only (the floor of visiting every repository), and pages plus one DescribeImages
per repository (the floor of looking inside each). moto answers on loopback, in this process: times are a floor set
by moto's speed and this machine's two cores, call counts and concurrency are what AWS would see.

The repositories are created in moto's backends directly (setup, not measured) and hold no images: a sweep of an
image costs a DescribeImages page and a share of the audit Query, which the per-repository reads already include.

Run: .venv/bin/python benchmarks/org_sweep.py [--accounts 100] [--regions 5] [--repositories 100] [--concurrency 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # the functions run in this process: their INFO lines would drown it


class EndpointCalls:
    """Every request the local endpoint answers, by service:operation (the SigV4 scope names the service)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def record(self, environ: dict[str, Any]) -> None:
        from ecr_warden_tools.local.aws_errors import operation_name

        # ecr-warden's functions name themselves in the user agent (adapters/aws.py); the local stack's own
        # polling of the run queue plays Lambda's event source, which users don't pay for, and is left out
        caller = "fn" if "ecr-warden/" in environ.get("HTTP_USER_AGENT", "") else "other"
        with self._lock:
            self.calls[f"{caller} {operation_name(environ)}"] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            taken, self.calls = self.calls, Counter()
        return taken


def _count_requests(calls: EndpointCalls) -> None:
    from ecr_warden_tools.local import server

    original = server.LocalAwsApp.__call__

    def counted(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/_ecr_warden"):
            calls.record(environ)
        return original(self, environ, start_response)

    server.LocalAwsApp.__call__ = counted  # type: ignore[method-assign]


def _populate(scopes: list[Any], repositories: int) -> None:
    from moto.ecr.models import ecr_backends

    for scope in scopes:
        backend = ecr_backends[scope.account][scope.region]
        for n in range(repositories):
            backend.create_repository(
                repository_name=f"team-{n % 10}/service-{n:04d}", registry_id=None, encryption_config={},
                image_scan_config={"scanOnPush": True}, image_tag_mutability="IMMUTABLE", tags=[],
            )  # fmt: skip


def _admin(stack: Any, payload: dict[str, Any]) -> dict[str, Any]:
    answer = stack.runtimes["AdminFunction"].invoke({"by": "benchmark", **payload})
    if not answer.get("ok"):
        raise SystemExit(f"admin function refused: {json.dumps(answer)}")
    return dict(answer["result"])


def _sweep(stack: Any, regions: list[str], calls: EndpointCalls, timeout: float) -> dict[str, Any]:
    calls.take()
    started = time.monotonic()
    run = _admin(stack, {"action": "run", "operation": "start", "job": "sweep", "accounts": "organization",
                         "regions": regions, "reason": "benchmark"})  # fmt: skip
    polls = 0
    while True:
        time.sleep(0.5)
        status = _admin(stack, {"action": "run", "operation": "status", "run_id": run["run_id"]})
        polls += 1
        if status["state"] == "done" or time.monotonic() - started > timeout:
            break
    wall = time.monotonic() - started
    counted = Counter({k.split(" ", 1)[1]: n for k, n in calls.take().items() if k.startswith("fn ")})
    # the benchmark's own status polls (GetItem of the summary, one admin-log PutItem) are not the run's cost
    counted["dynamodb:GetItem"] -= polls
    counted["dynamodb:PutItem"] -= polls
    return {"wall": wall, "status": status, "calls": +counted, "concurrency": stack.concurrency("RunSteps")}


def _bare(stack: Any, scopes: list[Any], calls: EndpointCalls, look_inside: bool) -> dict[str, Any]:
    clients = {scope: stack.clients.client("ecr", scope) for scope in scopes}  # credentials assumed beforehand
    calls.take()
    started, repositories = time.monotonic(), 0
    for scope in scopes:
        ecr = clients[scope]
        for page in ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 1000}):
            for repository in page["repositories"]:
                repositories += 1
                if look_inside:
                    ecr.describe_images(repositoryName=repository["repositoryName"], maxResults=1000)
    counted = Counter({k.split(" ", 1)[1]: n for k, n in calls.take().items()})
    return {"wall": time.monotonic() - started, "repositories": repositories, "calls": counted}


def _per(calls: Counter[str], repositories: int, prefix: str = "") -> float:
    return sum(n for k, n in calls.items() if k.startswith(prefix)) / max(1, repositories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100, help="accounts in the organization (central included)")
    parser.add_argument("--regions", type=int, default=5)
    parser.add_argument("--repositories", type=int, default=100, help="repositories per registry")
    parser.add_argument("--concurrency", type=int, default=5, help="RunConcurrency (the event source's maximum)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--summary", action="store_true", help="end with one JSON line of the numbers (make bench)")
    args = parser.parse_args()

    from ecr_warden_tools.local.stack import LocalStack

    calls = EndpointCalls()
    _count_requests(calls)
    parameters = {"RunConcurrency": str(args.concurrency), "AdminReservedConcurrency": "0", "LogLevel": "WARNING"}
    stack = LocalStack(ROOT / "template.yaml", parameters=parameters, echo=lambda line: None,
                       accounts=args.accounts, regions=args.regions)  # fmt: skip
    began = time.monotonic()
    stack.start()
    try:
        scopes = stack.organization.scopes()
        _populate(scopes, args.repositories)
        total = len(scopes) * args.repositories
        print(f"organization: {args.accounts} accounts x {args.regions} regions = {len(scopes)} registries, "
              f"{total:,} repositories (set up in {time.monotonic() - began:.0f} s)")  # fmt: skip
        swept = _sweep(stack, list(stack.organization.regions), calls, args.timeout)
        listing = _bare(stack, scopes, calls, look_inside=False)
        inside = _bare(stack, scopes, calls, look_inside=True)
    finally:
        stack.stop()
    status, peaks = swept["status"], swept["concurrency"]
    per_group = max(peaks["peak_per_group"].values(), default=0)
    per_account = max(peaks["peak_per_account"].values(), default=0)
    print(f"\nsweep run ({status['state']}): {status['repositories']['done']:,} repositories in "
          f"{status['batches']['done']:,} batches, {status['registries']['listed']} registries listed, "
          f"{status['registries']['failed']} unreachable")  # fmt: skip
    rows = [
        (f"sweep run (RunConcurrency {args.concurrency})", swept["wall"], _per(swept["calls"], total, "ecr:"),
         _per(swept["calls"], total), str(peaks["peak"]), str(per_group), str(per_account)),
        ("bare loop: DescribeRepositories pages", listing["wall"], _per(listing["calls"], total, "ecr:"),
         _per(listing["calls"], total), "1", "1", "1"),
        ("bare loop: pages + DescribeImages each", inside["wall"], _per(inside["calls"], total, "ecr:"),
         _per(inside["calls"], total), "1", "1", "1"),
    ]  # fmt: skip
    print(f"\n{'':42} {'wall s':>8} {'ECR calls/repo':>15} {'all calls/repo':>15} {'peak':>5} "
          f"{'peak/registry':>14} {'peak/account':>13}")  # fmt: skip
    for name, wall, ecr_per, all_per, peak, group, account in rows:
        print(f"{name:42} {wall:8.1f} {ecr_per:15.2f} {all_per:15.2f} {peak:>5} {group:>14} {account:>13}")
    print("\nsweep run calls by operation (per repository):")
    for operation, n in sorted(swept["calls"].items(), key=lambda kv: -kv[1]):
        print(f"  {operation:45} {n:9,}  {n / total:6.3f}")
    if args.summary:
        print(json.dumps({
            "accounts": args.accounts, "regions": args.regions, "repositories": total,
            "done": status["state"] == "done",
            "wall": round(swept["wall"], 1), "bare_wall": round(inside["wall"], 1),
            "ecr_calls_per_repository": round(_per(swept["calls"], total, "ecr:"), 2),
            "calls_per_repository": round(_per(swept["calls"], total), 2),
            "peak": peaks["peak"], "peak_per_registry": per_group, "peak_per_account": per_account,
            "concurrency": args.concurrency,
        }))  # fmt: skip
    print(f"\ntargets: peak per registry 1 (one caller per account and region), peak per account <= regions "
          f"({args.regions}), peak overall <= RunConcurrency ({args.concurrency})")  # fmt: skip


if __name__ == "__main__":
    main()
