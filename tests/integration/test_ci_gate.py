"""`ecr-warden gate`: a pipeline's "may I deploy this?" that can't be fooled: it waits for the decision, fails on a
quarantined image, never reads a missing tag as clean, and says when no decision came in time."""

from __future__ import annotations

import argparse

import pytest

from ecr_warden.adapters import aws as aws_clients
from ecr_warden_tools.ci_gate import EXIT_BLOCKED, EXIT_DEPLOYABLE, EXIT_UNDECIDED, ImageDecisions, duration, run
from ecr_warden_tools.local.images import OCI_INDEX, OCI_MANIFEST, image_index, image_manifest
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env
from tests.integration.test_scan_gate import CRITICAL


@pytest.fixture(autouse=True)
def _fresh_clients() -> None:
    aws_clients.reset_clients()


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _gate(aws: Env, timeout: str = "30m", **image: str) -> tuple[int, FakeTime]:
    time = FakeTime()
    decisions = ImageDecisions(aws.ecr, aws.store, clock=time.clock, sleep=time.sleep)
    args = argparse.Namespace(
        repository=REPOSITORY, digest=image.get("digest"), tag=image.get("tag"), timeout=duration(timeout),
        interval=duration("10s"), json=False,
    )  # fmt: skip
    return run(args, decisions), time


def test_a_quarantined_image_exits_1_with_its_findings(aws: Env, capsys: pytest.CaptureFixture[str]) -> None:
    aws.create_repository()
    digest = aws.push("v1", "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    aws.gate().handle(events.inspector_scan(digest, ["v1"], {"CRITICAL": 1, "TOTAL": 2}))
    code, _ = _gate(aws, digest=digest)
    out = capsys.readouterr().out
    assert code == EXIT_BLOCKED
    assert out.startswith(f"BLOCKED: {REPOSITORY}@{digest} is QUARANTINED")
    assert "CVE-2024-6387" in out


def test_a_clean_image_exits_0(aws: Env) -> None:
    aws.create_repository()
    digest = aws.push("v2", "good")
    aws.gate().handle(events.inspector_scan(digest, ["v2"], {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 1}))
    assert _gate(aws, tag="v2")[0] == EXIT_DEPLOYABLE


def test_no_decision_in_time_exits_2_after_waiting(aws: Env, capsys: pytest.CaptureFixture[str]) -> None:
    aws.create_repository()
    digest = aws.push("v3", "unscanned")
    code, time = _gate(aws, timeout="5m", digest=digest)
    assert code == EXIT_UNDECIDED
    assert time.now == 300, "it waited the whole timeout, in intervals, without a fixed sleep"
    assert "no decision" in capsys.readouterr().err


def test_a_tag_that_no_longer_resolves_is_never_clean(aws: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """The operations guide's workflow read a quarantined tag's failing lookup as '0 CRITICAL' and deployed."""
    aws.create_repository()
    digest = aws.push("v4", "bad")
    aws.enhanced.findings[(REPOSITORY, digest)] = list(CRITICAL)
    aws.gate().handle(events.inspector_scan(digest, ["v4"], {"CRITICAL": 1, "TOTAL": 2}))
    code, _ = _gate(aws, tag="v4")
    assert code == EXIT_UNDECIDED
    assert "--digest" in capsys.readouterr().err


def test_an_index_is_judged_by_its_platform_images(aws: Env) -> None:
    aws.create_repository()
    child = aws.push(None, "arm64", media_type=OCI_MANIFEST, manifest=image_manifest("arm64", OCI_MANIFEST))
    index = aws.push("v5", "index", media_type=OCI_INDEX, manifest=image_index({"linux/arm64": child}))
    aws.gate().handle(events.push(index, "v5", media_type=OCI_INDEX))
    assert _gate(aws, timeout="1m", digest=index)[0] == EXIT_UNDECIDED  # mapped, its platform not scanned yet
    aws.gate().handle(events.inspector_scan(child, [], {"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 1}))
    assert _gate(aws, digest=index)[0] == EXIT_DEPLOYABLE
