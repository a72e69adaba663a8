"""1,000 events through the scan gate's entry point with 10 % of AWS calls throttled, Lambda's retries included.

Each event goes through `process` (the handler's body) as Lambda delivers an asynchronous event: on an error it is
delivered again, twice at most, then it goes to the on-failure destination (counted as parked, never lost). A
throttle is raised before the call is sent (botocore's own retries are bypassed: the pessimistic case of a throttle
that outlasted them). Afterwards ECR and the decision bus are compared with what the events asked for:
- lost: a CRITICAL image whose tags are still deployable although none of its events was parked;
- duplicated: a decision announced more than once for one image and action; wrongly acted: a clean image touched.
Targets: 0 lost, 0 duplicated, 0 wrongly acted. Run: .venv/bin/python benchmarks/resilience.py
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]

EVENTS = 1_000
THROTTLE_RATE = 0.10
CRITICAL_SHARE = 0.2
LAMBDA_ATTEMPTS = 3  # the first delivery and Lambda's two asynchronous retries
REPOSITORY = "ses-base/api-server"  # the fakes' default repository
ACCOUNT = "123456789012"
RETRY_DELAY = timedelta(seconds=90)  # Lambda retries an asynchronous event 1 minute, then 2 minutes, after it failed


class Throttler:
    """Raises ThrottlingException before a share of AWS calls, reproducibly (seeded)."""

    def __init__(self, rate: float, seed: int = 7) -> None:
        self.rate, self.random, self.enabled = rate, random.Random(seed), False
        self.injected = 0

    def __call__(self, model: Any, **_: Any) -> None:
        from botocore.exceptions import ClientError

        if self.enabled and self.random.random() < self.rate:
            self.injected += 1
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (injected)"}}
            raise ClientError(error, model.name)


def _events(digests: dict[str, tuple[str, bool]], duplicates: int) -> list[dict[str, Any]]:
    from tests.events import _fresh

    events: list[dict[str, Any]] = []
    for digest, (tag, critical) in digests.items():
        push = _fresh("ecr-image-action-push.json")
        push["detail"].update({"repository-name": REPOSITORY, "image-digest": digest, "image-tag": tag})
        scan = _fresh("inspector2-scan-critical.json")
        counts = {"CRITICAL": 1, "TOTAL": 1} if critical else {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 1}
        scan["detail"].update(
            {
                "repository-name": f"arn:aws:ecr:us-east-1:123456789012:repository/{REPOSITORY}",
                "image-digest": digest,
                "image-tags": [tag],
                "finding-severity-counts": counts,
            }
        )
        events += [push, scan]
    rng = random.Random(11)
    events += [dict(rng.choice(events)) for _ in range(duplicates)]  # at-least-once delivery
    rng.shuffle(events)  # and out of order
    return events


@dataclass
class Bench:
    """The gate wired to moto (provisioned from template.yaml), with every AWS client throttled by `throttle`."""

    throttle: Throttler
    clients: dict[str, Any] = field(default_factory=dict)
    published: list[dict[str, Any]] = field(default_factory=list)
    parked: list[str] = field(default_factory=list)
    skew: timedelta = timedelta(0)  # Lambda retries a minute or more after a failure: the gate's clock jumps

    def client(self, service: str) -> Any:
        import boto3

        if service not in self.clients:
            made = boto3.client(service, region_name="us-east-1")
            made.meta.events.register("before-call.*.*", self.throttle)
            self.clients[service] = made
        return self.clients[service]

    def provision(self) -> dict[str, str]:
        from ecr_warden_tools.local.provision import Provisioner
        from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults

        template = load_template(ROOT / "template.yaml")
        resolver = Resolver(template, parameter_defaults(template), "us-east-1", ACCOUNT)
        outputs = Provisioner(self.client, template, ROOT, resolver).run().outputs
        self.client("ecr").create_repository(repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")
        return outputs

    def images(self, count: int, findings: Any) -> dict[str, tuple[str, bool]]:
        from ecr_warden_tools.local.images import image_manifest
        from tests.integration.test_scan_gate import CRITICAL

        digests: dict[str, tuple[str, bool]] = {}
        for i in range(count):
            pushed = self.client("ecr").put_image(
                repositoryName=REPOSITORY, imageManifest=image_manifest(f"r{i}"), imageTag=f"v{i}"
            )
            digest, critical = pushed["image"]["imageId"]["imageDigest"], i < count * CRITICAL_SHARE
            digests[digest] = (f"v{i}", critical)
            findings.set(digest, list(CRITICAL) if critical else [])
        return digests

    def gate(self, outputs: dict[str, str], findings: Any) -> Any:
        from ecr_warden.adapters.audit_store import DynamoAuditStore
        from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
        from ecr_warden.adapters.exemptions import DynamoExemptions
        from ecr_warden.adapters.registry import EcrRegistry
        from ecr_warden.domain.images import Scope
        from ecr_warden.gate.context import GateContext, utc_now
        from ecr_warden.gate.dispatch import ScanGate
        from ecr_warden.gate.ports import Ports
        from ecr_warden.policy.load import default_policy

        announcer = EventBridgeAnnouncer(outputs["DecisionBusName"], self.client("events"))
        publish = announcer.publish

        def recording(detail: Any) -> None:
            publish(detail)
            self.published.append({"digest": detail.digest, "action": detail.action.value, "id": detail.decision_id})

        announcer.publish = recording  # type: ignore[method-assign]
        store = DynamoAuditStore(outputs["AuditTableName"], Scope(ACCOUNT, "us-east-1"), self.client("dynamodb"))
        exemptions = DynamoExemptions(outputs["AuditTableName"], Scope(ACCOUNT, "us-east-1"), self.client("dynamodb"))
        ports = Ports(EcrRegistry(self.client("ecr")), findings, store, announcer, exemptions=exemptions)
        context = GateContext(default_policy(), "enforce", ACCOUNT, "us-east-1", "bench", lambda: utc_now() + self.skew)
        return ScanGate(context, ports)

    def deliver(self, raw: dict[str, Any], settings: Any, gate: Any) -> None:
        """As Lambda delivers an asynchronous event: two retries after an error, then the on-failure destination."""
        from ecr_warden.gate.entry import process

        for attempt in range(LAMBDA_ATTEMPTS):
            try:
                process(raw, settings, gate_factory=lambda _s, _a: gate)
                return
            except Exception:
                self.skew += RETRY_DELAY
                if attempt == LAMBDA_ATTEMPTS - 1:
                    self.parked.append(raw["detail"]["image-digest"])


def run(events: int = EVENTS, rate: float = THROTTLE_RATE) -> dict[str, Any]:
    from moto import mock_aws

    from ecr_warden.observability import logger, metrics
    from ecr_warden.settings import GateSettings
    from ecr_warden_tools.local import moto_patches
    from tests.fakes import FakeFindings

    metrics.add_metric = lambda **_: None  # type: ignore[method-assign]
    logger.setLevel("CRITICAL")  # injected failures are logged by design; the verdict below is what counts
    moto_patches.apply()
    bench = Bench(Throttler(rate))
    with mock_aws():
        outputs = bench.provision()
        findings = FakeFindings()
        digests = bench.images((events - events // 5) // 2, findings)
        gate = bench.gate(outputs, findings)
        settings = GateSettings.model_validate(
            {
                "AUDIT_TABLE_NAME": outputs["AuditTableName"],
                "DECISION_BUS_NAME": outputs["DecisionBusName"],
                "DELAYED_CHECKS_QUEUE_URL": outputs["DelayedChecksQueueUrl"],
                "WARDEN_ENVIRONMENT": "bench",
                "AWS_REGION": "us-east-1",
            }
        )
        work = _events(digests, events - 2 * len(digests))
        bench.throttle.enabled = True
        started = time.perf_counter()
        for raw in work:
            bench.deliver(raw, settings, gate)
        elapsed = time.perf_counter() - started
        bench.throttle.enabled = False
        result = _verdict(bench.client("ecr"), digests, bench)
    return {
        **result,
        "events": len(work),
        "events_per_s": round(len(work) / elapsed, 1),
        "throttles_injected": bench.throttle.injected,
    }


def _verdict(ecr: Any, digests: dict[str, tuple[str, bool]], bench: Bench) -> dict[str, Any]:
    lost = wrongly = silent = 0
    announced = Counter((p["digest"], p["action"]) for p in bench.published)
    for digest, (tag, critical) in digests.items():
        details = ecr.describe_images(repositoryName=REPOSITORY, imageIds=[{"imageDigest": digest}])["imageDetails"]
        tags = details[0].get("imageTags", [])
        if critical and tag in tags and digest not in bench.parked:
            lost += 1
        if critical and tag not in tags and not announced[(digest, "quarantined")] and digest not in bench.parked:
            silent += 1  # quarantined in ECR, never announced, and nothing left to retry it
        if not critical and tags != [tag]:
            wrongly += 1
    # a decision sent again under its decision_id is a redelivery consumers deduplicate; another id is a duplicate
    ids: dict[tuple[str, str], set[str]] = {}
    for p in bench.published:
        ids.setdefault((p["digest"], p["action"]), set()).add(p["id"])
    return {
        "parked": len(bench.parked),
        "lost": lost,
        "unannounced": silent,
        "duplicated": sum(len(found) - 1 for (_, action), found in ids.items() if action != "passed"),
        "redelivered": len(bench.published) - sum(len(found) for found in ids.values()),
        "wrongly_acted": wrongly,
        "quarantined": sum(1 for (_, action) in announced if action == "quarantined"),
    }


def print_result(result: dict[str, Any]) -> None:
    print(
        f"  {result['events']:,} events, {result['throttles_injected']} calls throttled: "
        f"{result['events_per_s']} events/s; {result['quarantined']} quarantined, {result['parked']} parked "
        f"(on-failure destination); lost {result['lost']} (target 0), quarantined but never announced "
        f"{result['unannounced']} (target 0), duplicated {result['duplicated']} (target 0; "
        f"{result['redelivered']} re-sent under their decision_id), "
        f"clean images touched {result['wrongly_acted']} (target 0)"
    )


if __name__ == "__main__":
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    print_result(run())
