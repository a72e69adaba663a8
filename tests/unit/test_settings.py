"""Each function's settings: required variables are required, and a missing one is named at cold start."""

from __future__ import annotations

import importlib.util

import pytest

from ecr_warden.errors import ConfigurationError
from ecr_warden.settings import GateSettings, NotifierSettings
from tests.conftest import ROOT

GATE_ENV = {
    "AUDIT_TABLE_NAME": "t",
    "DECISION_BUS_NAME": "b",
    "DELAYED_CHECKS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
    "AWS_REGION": "eu-west-1",
    "WARDEN_MODE": "audit",
}


def test_gate_settings_read_the_template_variables() -> None:
    settings = GateSettings.from_env(GATE_ENV)
    assert (settings.audit_table_name, settings.decision_bus_name) == ("t", "b")
    assert (settings.region, settings.mode, settings.environment) == ("eu-west-1", "audit", "dev")


@pytest.mark.parametrize("missing", ["AUDIT_TABLE_NAME", "DECISION_BUS_NAME", "DELAYED_CHECKS_QUEUE_URL"])
def test_a_missing_gate_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in GATE_ENV.items() if k != missing}
    with pytest.raises(ConfigurationError, match=f"{missing} \\(missing\\)"):
        GateSettings.from_env(env)


def test_an_invalid_mode_is_named() -> None:
    with pytest.raises(ConfigurationError, match="WARDEN_MODE"):
        GateSettings.from_env({**GATE_ENV, "WARDEN_MODE": "Audit"})


def test_notifier_names_every_missing_variable() -> None:
    with pytest.raises(ConfigurationError) as raised:
        NotifierSettings.from_env({"DECISIONS_TOPIC_ARN": "arn"})
    for name in ("NOTIFY_STATE_TABLE_NAME", "FOLLOW_UP_QUEUE_URL", "SLACK_DEAD_LETTER_QUEUE_URL"):
        assert name in str(raised.value)
    assert "DECISIONS_TOPIC_ARN" not in str(raised.value)


def test_the_handler_fails_its_cold_start_without_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDIT_TABLE_NAME", raising=False)
    monkeypatch.setenv("DECISION_BUS_NAME", "b")
    spec = importlib.util.spec_from_file_location("gate_cold_start", ROOT / "functions/scan_gate/app.py")
    assert spec is not None
    assert spec.loader is not None
    with pytest.raises(ConfigurationError, match="AUDIT_TABLE_NAME"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
