"""ecr-warden benchmarks: numbers to read, not assertions. Run with `make bench` (a few minutes); the method and
the numbers so far are in docs/PERFORMANCE.md.

- AWS calls per decision (policy already cached) on moto, with Inspector answering through a botocore Stubber
  so the real adapter and its pagination are exercised. Targets: CRITICAL on a tagged single-platform image
  with <= 100 findings <= 11 calls (8 until 0.2; the quarantine now re-reads the image's tags after its
  write-ahead, so a tag pushed meanwhile is taken away too; clears the announcement it owes once sent, so a crash
  between acting and announcing can't lose it; and reads the admin function's exemptions before blocking); a clean
  result <= 2.
- Decision throughput in-process against moto (moto's speed dominates: a floor, not Lambda's number).
- Cold start as users pay it (benchmarks/cold_start.py): for each function, a fresh process imports the handler
  and completes its first invocation against a local endpoint (moto's server on loopback, template.yaml
  provisioned on it), next to a bare boto3 script making the same AWS calls; layers with and without bytecode;
  peak memory of both. Target: <= 1.3x the bare script. Median of several interleaved runs.
- Slack under a flood of decisions: at most one message per second per webhook.
- Size of the built layers and function artifacts when `make build` has run.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "shared"))  # a script, not a test: no pytest pythonpath here

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "bench",
        "POWERTOOLS_SERVICE_NAME": "scan-gate",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)

REPOSITORY = "bench/api-server"
ACCOUNT = "123456789012"


def _finding(i: int, digest: str, severity: str) -> dict[str, Any]:
    return {
        "awsAccountId": ACCOUNT,
        "findingArn": f"arn:aws:inspector2:us-east-1:{ACCOUNT}:finding/{i:032x}",
        "type": "PACKAGE_VULNERABILITY",
        "severity": severity,
        "status": "ACTIVE",
        "title": f"CVE-2026-{i:04d}",
        "description": "bench",
        "firstObservedAt": time.time(),
        "lastObservedAt": time.time(),
        "updatedAt": time.time(),
        "remediation": {},
        "resources": [
            {
                "type": "AWS_ECR_CONTAINER_IMAGE",
                "id": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/x",
                "details": {
                    "awsEcrContainerImage": {"repositoryName": REPOSITORY, "imageHash": digest, "registry": ACCOUNT}
                },
            }
        ],
        "packageVulnerabilityDetails": {
            "vulnerabilityId": f"CVE-2026-{i:04d}",
            "source": "NVD",
            "vulnerablePackages": [{"name": "pkg", "version": "1"}],
        },
    }


def _event(detail_type: str, source: str, detail: dict[str, Any]) -> Any:
    from ecr_warden.contracts.parsing import parse_aws_event

    return parse_aws_event(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT,
            "time": "2026-11-27T00:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def _scan_event(digest: str, tags: list[str], counts: dict[str, int]) -> Any:
    return _event(
        "Inspector2 Scan",
        "aws.inspector2",
        {
            "scan-status": "INITIAL_SCAN_COMPLETE",
            "image-digest": digest,
            "image-tags": tags,
            "repository-name": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{REPOSITORY}",
            "finding-severity-counts": counts,
        },
    )


def _own_push_event(digest: str) -> Any:
    detail = {
        "result": "SUCCESS",
        "repository-name": REPOSITORY,
        "image-digest": digest,
        "action-type": "PUSH",
        "image-tag": f"quarantined-{digest[7:19]}",
    }
    return _event("ECR Image Action", "aws.ecr", detail)


def _gate_on_moto(client: Any, inspector: Any) -> Any:
    """The scan gate wired to moto resources provisioned from template.yaml (Inspector through a Stubber)."""
    from ecr_warden.adapters.audit_store import DynamoAuditStore
    from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
    from ecr_warden.adapters.exemptions import DynamoExemptions
    from ecr_warden.adapters.inspector import InspectorFindings
    from ecr_warden.adapters.registry import EcrRegistry
    from ecr_warden.domain.images import Scope
    from ecr_warden.gate.context import GateContext
    from ecr_warden.gate.dispatch import ScanGate
    from ecr_warden.gate.ports import Ports
    from ecr_warden.policy.load import default_policy
    from ecr_warden_tools.local.provision import Provisioner
    from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults

    template = load_template(ROOT / "template.yaml")
    resolver = Resolver(template, parameter_defaults(template), "us-east-1", ACCOUNT)
    outputs = Provisioner(client, template, ROOT, resolver).run().outputs
    return ScanGate(
        GateContext(default_policy(), "enforce", ACCOUNT, "us-east-1", "dev"),
        Ports(
            registry=EcrRegistry(client("ecr")),
            enhanced=InspectorFindings(inspector),
            store=DynamoAuditStore(outputs["AuditTableName"], Scope(ACCOUNT, "us-east-1"), client("dynamodb")),
            announcer=EventBridgeAnnouncer(outputs["DecisionBusName"], client("events")),
            exemptions=DynamoExemptions(outputs["AuditTableName"], Scope(ACCOUNT, "us-east-1"), client("dynamodb")),
        ),
    )


def api_calls() -> dict[str, Any]:
    import boto3
    from botocore.stub import ANY, Stubber
    from moto import mock_aws

    from ecr_warden.actions import find
    from ecr_warden_tools.local import moto_patches
    from ecr_warden_tools.local.images import image_manifest

    moto_patches.apply()
    calls: Counter[str] = Counter()
    results: dict[str, Any] = {}
    with mock_aws():
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                made = boto3.client(service, region_name="us-east-1")
                made.meta.events.register(
                    "before-call.*.*", lambda model, _s=service, **_: calls.update([f"{_s}:{model.name}"])
                )
                clients[service] = made
            return clients[service]

        inspector = client("inspector2")
        stubber = Stubber(inspector)
        stubber.activate()
        gate = _gate_on_moto(client, inspector)
        ecr = client("ecr")
        ecr.create_repository(repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")

        def push(seed: str, tag: str) -> str:
            image = ecr.put_image(repositoryName=REPOSITORY, imageManifest=image_manifest(seed), imageTag=tag)
            return str(image["image"]["imageId"]["imageDigest"])

        def measure(name: str, event: Any) -> None:
            calls.clear()
            outcome = gate.handle(event)
            results[name] = {"calls": sum(calls.values()), "by_operation": dict(calls), "action": outcome.action}

        bad = push("bench-bad", "v1")
        findings = [_finding(i, bad, "CRITICAL" if i < 3 else "HIGH") for i in range(100)]
        for _ in range(2):  # the first delivery and its duplicate
            stubber.add_response("list_findings", {"findings": findings}, {"filterCriteria": ANY, "maxResults": 100})
        critical = _scan_event(bad, ["v1"], {"CRITICAL": 3, "HIGH": 97, "TOTAL": 100})
        measure("critical, tagged single-platform, 100 findings (target <= 11)", critical)
        measure("same CRITICAL event again (duplicate)", critical)
        clean = _scan_event(push("bench-good", "v2"), ["v2"], {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 2})
        measure("clean result (target <= 2)", clean)
        measure("same clean event again (duplicate)", clean)
        measure("ecr-warden's own quarantine push (loop safety)", _own_push_event(bad))
        calls.clear()
        request = {"repository": REPOSITORY, "digest": bad, "reason": "bench", "by": "bench"}
        released = find("release").invoke(request, gate.actor)
        results["release of the quarantined image"] = {
            "calls": sum(calls.values()),
            "by_operation": dict(calls),
            "action": released.action,
        }

        started, count = time.perf_counter(), 50
        for i in range(count):
            gate.handle(_scan_event(push(f"tp-{i}", f"tp-{i}"), [f"tp-{i}"], {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0}))
        results["throughput"] = round(count / (time.perf_counter() - started), 1)
    return results


def slack_flood(decisions: int = 200, images: int = 20, senders: int = 4) -> dict[str, Any]:
    """200 decisions (20 new quarantines + 180 follow-up updates) from 4 concurrent 'invocations' against a
    local webhook server; reports the highest number of Slack messages in any one-second window."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import boto3
    from moto import mock_aws

    from ecr_warden.adapters.dead_letter import SqsDeadLetter
    from ecr_warden.adapters.follow_up import SqsFollowUps
    from ecr_warden.adapters.notify_state import DynamoNotifyState
    from ecr_warden.adapters.slack import SlackWebhooks
    from ecr_warden.adapters.sns import SnsPublisher
    from ecr_warden.contracts.decision import DecisionDetail
    from ecr_warden.notify.service import Notifier
    from ecr_warden.policy.load import default_policy
    from ecr_warden_tools.local import moto_patches
    from ecr_warden_tools.local.provision import Provisioner
    from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults

    arrivals: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrivals.append(time.monotonic())
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    moto_patches.apply()
    with mock_aws():
        template = load_template(ROOT / "template.yaml")
        outputs = (
            Provisioner(
                lambda svc: boto3.client(svc, region_name="us-east-1"),
                template,
                ROOT,
                Resolver(template, parameter_defaults(template), "us-east-1", ACCOUNT),
            )
            .run()
            .outputs
        )
        boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
            SecretId=outputs["SlackWebhookSecretArn"],
            SecretString=json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}/services/T/B/x"}),
        )
        sqs = boto3.client("sqs", region_name="us-east-1")

        def notifier() -> Notifier:
            return Notifier(
                policy=default_policy(),
                state=DynamoNotifyState(outputs["NotifyStateTableName"]),
                slack=SlackWebhooks(outputs["SlackWebhookSecretArn"]),
                sns=SnsPublisher(outputs["DecisionsTopicArn"]),
                follow_ups=SqsFollowUps(sqs.get_queue_url(QueueName="ecr-warden-dev-follow-ups")["QueueUrl"]),
                slack_dead_letter=SqsDeadLetter(outputs["SlackDeadLetterQueueUrl"]),
            )

        base = json.loads((ROOT / "events" / "ecr-warden-decision-quarantined.json").read_text())["detail"]
        work = []
        for i in range(decisions):
            image = i % images
            first = i < images
            work.append(
                DecisionDetail.model_validate(
                    base
                    | {
                        "decision_id": str(uuid.uuid4()),
                        "digest": f"sha256:{image:064x}",
                        "action": "quarantined" if first else "updated",
                        "fingerprint": f"{i:032x}",
                    }
                )
            )
        chunks = [work[n::senders] for n in range(senders)]
        started = time.monotonic()
        threads = [threading.Thread(target=lambda c=chunk: [notifier().on_decision(d) for d in c]) for chunk in chunks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    server.shutdown()
    window_max = max((sum(1 for t in arrivals if a <= t < a + 1.0) for a in arrivals), default=0)
    return {
        "decisions": decisions,
        "slack_messages": len(arrivals),
        "seconds": round(elapsed, 1),
        "max_per_second": window_max,
    }


def sizes() -> dict[str, str]:
    build = ROOT / ".aws-sam" / "build"
    if not build.is_dir():
        return {"note": "run `make build` first to measure artifact sizes"}
    result = {}
    for artifact in sorted(p for p in build.iterdir() if p.is_dir()):
        total = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
        result[artifact.name] = f"{total / 1024 / 1024:.2f} MiB unzipped"
    return result


def _resilience_settings_and_cost(calls: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    import cost
    import resilience
    import settings_at_scale

    targets: list[tuple[str, str, str, bool]] = []
    rate = f"{resilience.THROTTLE_RATE:.0%}"
    print(f"\n== {resilience.EVENTS:,} events, {rate} of AWS calls throttled, Lambda's retries ==")
    run = resilience.run()
    resilience.print_result(run)
    for what in ("lost", "unannounced", "duplicated", "wrongly_acted"):
        targets.append((f"throttled run: {what.replace('_', ' ')}", str(run[what]), "0", run[what] == 0))
    count = settings_at_scale.REPOSITORIES
    print(f"\n== repository settings: a new repository, a compliant one, a reconcile of {count:,} ==")
    settings = settings_at_scale.measure(count)
    settings_at_scale.print_result(settings, count)
    new_calls, limit = settings["new"][0], settings_at_scale.NEW_REPOSITORY_TARGET
    targets.append(("AWS calls: new non-compliant repository", str(new_calls), f"<= {limit}", new_calls <= limit))
    ecr_writes = sum(n for call, n in settings["compliant"][3].items() if call.startswith("ecr:Put"))
    targets.append(("ECR writes: compliant repository", str(ecr_writes), "0", ecr_writes == 0))
    import report_at_scale

    repositories = report_at_scale.REPOSITORIES
    print(f"\n== admin report over {repositories:,} repositories, next to a bare loop doing the same reads ==")
    report_at_scale.print_result(report_at_scale.measure(repositories), repositories)
    targets += _organization_sweep()
    print("\n== estimated cost per 1,000,000 events (calls as measured above) ==")
    critical = next(r["by_operation"] for name, r in calls.items() if name.startswith("critical"))
    clean = next(r["by_operation"] for name, r in calls.items() if name.startswith("clean"))
    cost.print_estimate(cost.estimate(cost.workload(critical, clean)))
    return targets


ORG_SWEEP = ("10", "5", "20")  # accounts, regions, repositories each: 1,000 repositories in about a minute


def _organization_sweep() -> list[tuple[str, str, str, bool]]:
    """A sweep run across a local organization (benchmarks/org_sweep.py, in its own process: the local stack resets
    moto). `make bench-org` runs the issue's size, 100 accounts x 5 regions x 100 repositories (tens of minutes)."""
    import subprocess

    accounts, regions, repositories = ORG_SWEEP
    print(f"\n== sweep run across a local organization: {accounts} accounts x {regions} regions x {repositories} "
          "repositories, next to a bare loop ==")  # fmt: skip
    command = [sys.executable, str(ROOT / "benchmarks" / "org_sweep.py"), "--accounts", accounts, "--regions",
               regions, "--repositories", repositories, "--summary"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    lines = done.stdout.splitlines()
    summary = next((json.loads(line) for line in reversed(lines) if line.startswith("{")), None)
    print("\n".join("  " + line for line in lines if not line.startswith("{")))
    if summary is None:
        print(done.stderr[-2000:])
        return [("organization sweep run", "failed", "done", False)]
    return [
        ("organization sweep: every step counted", str(summary["done"]), "True", summary["done"]),
        ("organization sweep: peak steps per registry", str(summary["peak_per_registry"]), "1",
         summary["peak_per_registry"] == 1),
        ("organization sweep: peak steps per account", str(summary["peak_per_account"]), f"<= {regions}",
         summary["peak_per_account"] <= int(regions)),
    ]  # fmt: skip


def main() -> None:
    import calls_at_scale
    from cold_start import RUNS, TARGET_RATIO, cold_start, print_costs, print_table

    from ecr_warden.observability import metrics

    started = time.monotonic()
    targets: list[tuple[str, str, str, bool]] = []  # (what, measured, target, met)
    # Outside a handler nothing flushes metrics per invocation; Powertools would print an EMF blob mid-run.
    metrics.add_metric = lambda **_: None  # type: ignore[method-assign]
    print("== AWS calls per decision (policy cached) ==")
    calls = api_calls()
    throughput = calls.pop("throughput")
    for name, result in calls.items():
        print(f"  {result['calls']:>2} calls  {name}  -> {result['action']}")
        print(f"           {json.dumps(result['by_operation'])}")
        if "(target <= " in name:
            limit = int(name.split("(target <= ")[1].rstrip(")"))
            targets.append(
                (f"AWS calls: {name.split(' (')[0]}", str(result["calls"]), f"<= {limit}", result["calls"] <= limit)
            )
    print("\n== AWS calls per decision as the repository grows (ECR-like paging, 1,000 per page at most) ==")
    scale = calls_at_scale.measure()
    calls_at_scale.print_rows(scale)
    worst = max(max(row["critical"][0], row["unmapped_child"][0]) for row in scale)
    sizes_measured = "/".join(f"{row['images']:,}" for row in scale)
    limit = calls_at_scale.TARGET
    targets.append((f"AWS calls per decision at {sizes_measured} images", str(worst), f"<= {limit}", worst <= limit))
    print(f"\n== throughput (in-process on moto, clean decisions) ==\n  {throughput} decisions/s")
    print(
        f"\n== cold start as users pay it: import + first invocation in a fresh process, against moto on loopback, "
        f"vs a bare boto3 script making the same calls (median of {RUNS}, interleaved) =="
    )
    results, costs = cold_start()
    print_table(results)
    print_costs(costs)
    for result in results:
        for variant, row in result["variants"].items():
            targets.append(
                (
                    f"cold start, {result['scenario']} (layers {variant})",
                    f"{row['ratio']:.2f}x ({row['ms']:.0f} vs {result['bare']['ms']:.0f} ms)",
                    f"<= {TARGET_RATIO}x",
                    row["ratio"] <= TARGET_RATIO,
                )
            )
    print("\n== Slack under a flood: 200 decisions, 20 images, 4 concurrent senders, one webhook ==")
    flood = slack_flood()
    print(
        f"  {flood['slack_messages']} Slack messages for {flood['decisions']} decisions in {flood['seconds']} s; "
        f"most in any 1-second window: {flood['max_per_second']} (target <= 1)"
    )
    targets.append(
        ("Slack messages in any 1-second window", str(flood["max_per_second"]), "<= 1", flood["max_per_second"] <= 1)
    )
    targets += _resilience_settings_and_cost(calls)
    print("\n== artifact sizes ==")
    for name, size in sizes().items():
        print(f"  {name}: {size}")
    print("\n== targets ==")
    width = max(len(what) for what, *_ in targets)
    for what, measured, target, met in targets:
        print(f"  {what:<{width}}  {measured:>22}  {target:>8}  {'ok' if met else 'MISSED'}")
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
