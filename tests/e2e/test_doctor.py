"""`ecr-warden doctor` against the running local stack, found as an operator finds it: AWS_ENDPOINT_URL (what
`ecr-warden local` prints) and the standard region chain, no option naming the stack."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from ecr_warden_tools import doctor
from tests.e2e.conftest import RunningStack
from tests.unit.test_doctor import RULES

pytestmark = pytest.mark.e2e


def run_doctor(stack: RunningStack, monkeypatch: pytest.MonkeyPatch, *flags: str) -> tuple[int, str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint_url)
    parser = argparse.ArgumentParser()
    doctor.add_arguments(parser)
    lines: list[str] = []
    code = doctor.run(parser.parse_args(list(flags)), out=lines.append)
    return code, "\n".join(lines)


def test_doctor_on_the_local_stack(stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh registry scans nothing automatically: the doctor says so, with the command that fixes it
    code, report = run_doctor(stack, monkeypatch)
    assert code == 1, report
    assert f"local stack at {stack.endpoint_url}" in report
    command = re.search(
        r"✗ registry scanning \[required\].*\n    fix: (aws ecr put-registry-scanning-configuration .*)", report
    )
    assert command is not None, report
    scan_type = re.search(r"--scan-type (\w+)", command[1])
    rules = re.search(r"--rules '(.*)'", command[1])
    assert scan_type is not None
    assert rules is not None
    stack.client("ecr").put_registry_scanning_configuration(scanType=scan_type[1], rules=json.loads(rules[1]))

    code, report = run_doctor(stack, monkeypatch, "--send-test-message")
    assert code == 0, report
    for line in (
        "✓ functions [required]: ",
        "✓ policy [required]: /ecr-warden/dev/policy is valid",
        "✓ registry scanning [required]: ENHANCED CONTINUOUS_SCAN covers the managed repositories (*)",
        "✓ Slack webhook [required]: the test message was accepted by the webhook",
        f"✓ EventBridge rules [required]: {RULES} of {RULES} enabled",
        "✓ dead-letter queue ecr-warden-dev-scan-gate-dlq [advisory]: empty",
        "✓ dead-letter queue ecr-warden-dev-slack-dlq [advisory]: empty",
        "· mode [advisory]: enforce",
        "! Inspector ECR scanning [required]: unknown (the endpoint does not answer BatchGetAccountStatus",
    ):
        assert line in report, report
    assert "Traceback" not in report
    assert any("ecr-warden doctor" in message["body"].get("text", "") for message in stack.state()["slack_messages"])

    # Break two required pieces: an empty webhook secret, a disabled rule
    secret = stack.state()["outputs"]["SlackWebhookSecretArn"]
    stack.client("secretsmanager").put_secret_value(SecretId=secret, SecretString='{"url": ""}')
    stack.client("events").disable_rule(Name="ecr-warden-dev-scan-gate-EnhancedScanComplete")
    code, report = run_doctor(stack, monkeypatch)
    assert code == 1, report
    assert f"✗ Slack webhook [required]: secret {secret} is empty" in report
    assert f"aws secretsmanager put-secret-value --secret-id {secret} --secret-string file://webhook.json" in report
    disabled = "ecr-warden-dev-scan-gate-EnhancedScanComplete"
    assert f"✗ EventBridge rules [required]: 1 of {RULES} not enabled: {disabled}" in report
    assert "fix: aws events enable-rule --name ecr-warden-dev-scan-gate-EnhancedScanComplete\n" in report
    assert re.search(r"2 failed \(required\), \d+ warning\(s\): exit 1$", report), report

    # The printed fixes work
    stack.client("events").enable_rule(Name="ecr-warden-dev-scan-gate-EnhancedScanComplete")
    stack.client("secretsmanager").put_secret_value(
        SecretId=secret, SecretString=json.dumps({"url": "https://hooks.slack.com/services/T0/B0/x"})
    )
    code, report = run_doctor(stack, monkeypatch)
    assert code == 0, report
