"""AWS calls per decision at 10, 1,000 and 10,000 images in the repository (target: at most 14, whatever the size:
11 until 0.2, plus the quarantine's re-read of the image's tags after its write-ahead, the write that clears
the announcement it owed, and the read of stored exemptions before a block).

The embedded AWS pages DescribeImages and ListImages like ECR (100 by default, 1,000 at most), so a cost that
grows with the repository shows here. Inspector is the gate's in-memory port (moto's ListFindings ignores
filters); its one call is counted. Run: .venv/bin/python benchmarks/calls_at_scale.py
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "tools"), str(ROOT)]

SIZES = (10, 1_000, 10_000)
TARGET = 14


def _gate(client: Any, outputs: dict[str, str], findings: Any) -> Any:
    """The scan gate as deployed (gate/entry.py), on moto, with Inspector as the in-memory port."""
    from ecr_warden.adapters.audit_store import DynamoAuditStore
    from ecr_warden.adapters.decision_bus import EventBridgeAnnouncer
    from ecr_warden.adapters.exemptions import DynamoExemptions
    from ecr_warden.adapters.registry import EcrRegistry
    from ecr_warden.domain.images import Scope
    from ecr_warden.gate.context import GateContext
    from ecr_warden.gate.dispatch import ScanGate
    from ecr_warden.gate.ports import Ports
    from ecr_warden.policy.load import default_policy
    from tests.integration.conftest import ACCOUNT

    scope, table = Scope(ACCOUNT, "us-east-1"), outputs["AuditTableName"]
    ports = Ports(
        registry=EcrRegistry(client("ecr")),
        enhanced=findings,
        store=DynamoAuditStore(table, scope, client("dynamodb")),
        announcer=EventBridgeAnnouncer(outputs["DecisionBusName"], client("events")),
        exemptions=DynamoExemptions(table, scope, client("dynamodb")),
    )
    return ScanGate(GateContext(default_policy(), "enforce", ACCOUNT, "us-east-1", "bench"), ports)


def _scenario(size: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from ecr_warden_tools.local import moto_patches
    from ecr_warden_tools.local.images import OCI_INDEX, OCI_MANIFEST, image_index, image_manifest
    from ecr_warden_tools.local.provision import Provisioner
    from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults
    from tests.fakes import FakeFindings
    from tests.integration import events
    from tests.integration.conftest import ACCOUNT, REPOSITORY
    from tests.integration.test_scan_gate import CRITICAL

    moto_patches.apply()
    calls: Counter[str] = Counter()
    with mock_aws():
        clients: dict[str, Any] = {}

        def client(service: str) -> Any:
            if service not in clients:
                made = boto3.client(service, region_name="us-east-1")
                made.meta.events.register("before-call.*.*", lambda model, _s=service, **_: calls.update([_s]))
                clients[service] = made
            return clients[service]

        template = load_template(ROOT / "template.yaml")
        resolver = Resolver(template, parameter_defaults(template), "us-east-1", ACCOUNT)
        outputs = Provisioner(client, template, ROOT, resolver).run().outputs
        ecr = client("ecr")
        ecr.create_repository(repositoryName=REPOSITORY, imageTagMutability="IMMUTABLE")
        for i in range(size):
            ecr.put_image(repositoryName=REPOSITORY, imageManifest=image_manifest(f"filler-{i}"), imageTag=f"f{i}")
        findings = FakeFindings()
        gate = _gate(client, outputs, findings)

        def measure(event: Any) -> tuple[int, str, float]:
            calls.clear()
            findings.calls.clear()
            started = time.perf_counter()
            outcome = gate.handle(event)
            elapsed = (time.perf_counter() - started) * 1000
            return sum(calls.values()) + sum(findings.calls.values()), outcome.action.value, elapsed

        tagged = ecr.put_image(repositoryName=REPOSITORY, imageManifest=image_manifest("bad"), imageTag="v1")
        tagged_digest = tagged["image"]["imageId"]["imageDigest"]
        findings.set(tagged_digest, list(CRITICAL))
        critical = measure(events.inspector_scan(tagged_digest, ["v1"], {"CRITICAL": 1, "TOTAL": 2}))

        child_manifest = image_manifest("amd64", OCI_MANIFEST)
        child = ecr.put_image(
            repositoryName=REPOSITORY, imageManifest=child_manifest, imageManifestMediaType=OCI_MANIFEST
        )["image"]["imageId"]["imageDigest"]
        ecr.put_image(
            repositoryName=REPOSITORY,
            imageManifest=image_index({"linux/amd64": child}),
            imageManifestMediaType=OCI_INDEX,
            imageTag="v2",
        )
        findings.set(child, list(CRITICAL))
        unmapped = measure(events.inspector_scan(child, [], {"CRITICAL": 1, "TOTAL": 2}))
        return {"critical": critical, "unmapped_child": unmapped}


def measure(sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    """Per repository size: (calls, action, ms) of a CRITICAL tagged image and of an unmapped platform image."""
    rows = []
    for size in sizes:
        started = time.perf_counter()
        result = _scenario(size)
        rows.append({"images": size, **result, "setup_s": round(time.perf_counter() - started)})
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"  {'images':>8} | {'CRITICAL, tagged':>31} | {'platform image, index not mapped':>34} | target")
    for row in rows:
        (c_calls, c_action, c_ms), (u_calls, u_action, u_ms) = row["critical"], row["unmapped_child"]
        print(
            f"  {row['images']:>8} | {c_calls:>3} calls {c_action:<12} {c_ms:>5.0f} ms | {u_calls:>3} calls "
            f"{u_action:<12} {u_ms:>6.0f} ms | <= {TARGET}   (set-up {row['setup_s']} s)"
        )


def main() -> None:
    print_rows(measure())


if __name__ == "__main__":
    main()
