"""What keeps the cold start short (docs/PERFORMANCE.md): the EventBridge envelope without Powertools' parser
package, and Powertools Parameters on the client factory's clients instead of boto3 sessions of their own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parser.models.event_bridge import EventBridgeModel as PowertoolsEventBridgeModel
from botocore.stub import Stubber

from ecr_warden.adapters import aws
from ecr_warden.adapters.policy_source import CACHE_SECONDS, ssm_provider
from ecr_warden.adapters.slack import SECRET_CACHE_SECONDS, secrets_provider
from ecr_warden.contracts.envelope import EventBridgeModel
from tests.conftest import ROOT, load_event


def test_the_envelope_has_the_fields_and_aliases_of_powertools_eventbridge_model() -> None:
    ours, theirs = EventBridgeModel.model_fields, PowertoolsEventBridgeModel.model_fields
    assert list(ours) == list(theirs)
    for name, field in theirs.items():
        assert (ours[name].alias, ours[name].is_required(), ours[name].default) == (
            field.alias,
            field.is_required(),
            field.default,
        ), name
    assert EventBridgeModel.model_config.get("populate_by_name") is True


@pytest.mark.parametrize("name", ["inspector2-scan-clean.json", "ecr-warden-decision-quarantined.json"])
def test_the_envelope_reads_events_as_powertools_did(name: str) -> None:
    raw = load_event(name) | {"replay-name": "archive-replay"}
    assert (
        EventBridgeModel.model_validate(raw).model_dump() == PowertoolsEventBridgeModel.model_validate(raw).model_dump()
    )


def test_the_handlers_entries_do_not_import_powertools_parser_package() -> None:
    script = (
        "import sys\n"
        "import ecr_warden.gate.entry, ecr_warden.notify.entry\n"
        "print(sorted(n for n in sys.modules if n.startswith('aws_lambda_powertools.utilities.parser')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers" / "shared"), "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.stdout.strip() == "[]"


@pytest.fixture
def fresh() -> Iterator[None]:
    aws.reset_clients()
    parameters.clear_caches()
    yield
    aws.reset_clients()
    parameters.clear_caches()


def _no_new_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a boto3 session of its own")

    monkeypatch.setattr(boto3.session, "Session", refuse)


@pytest.mark.usefixtures("fresh")
def test_the_policy_is_read_with_the_client_factorys_ssm_client_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    ssm = aws.client("ssm")
    _no_new_sessions(monkeypatch)
    with Stubber(ssm) as stub:
        stub.add_response("get_parameter", {"Parameter": {"Name": "/p", "Type": "String", "Value": "{}"}})
        assert ssm_provider().client is ssm
        assert ssm_provider().get("/p", max_age=CACHE_SECONDS) == "{}"
        assert ssm_provider().get("/p", max_age=CACHE_SECONDS) == "{}"  # cached: the stub answers only once
        stub.assert_no_pending_responses()
    provider = ssm_provider()
    parameters.clear_caches()  # Powertools' own reset still empties the cache
    assert ssm_provider() is not provider
    aws.reset_clients()  # a new client (tests switch endpoints) gets a provider of its own
    assert ssm_provider().client is aws.client("ssm")


@pytest.mark.usefixtures("fresh")
def test_webhook_secrets_are_read_with_the_client_factorys_client_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    secretsmanager = aws.client("secretsmanager")
    _no_new_sessions(monkeypatch)
    with Stubber(secretsmanager) as stub:
        stub.add_response("get_secret_value", {"Name": "s", "SecretString": '{"url": "https://hooks.example/x"}'})
        assert secrets_provider().client is secretsmanager
        for _ in range(2):
            value = secrets_provider().get("s", max_age=SECRET_CACHE_SECONDS, transform="json")
            assert value == {"url": "https://hooks.example/x"}
        stub.assert_no_pending_responses()


def test_each_function_builds_only_the_models_its_first_decision_needs() -> None:
    """The notifier never loads the AWS event models; the gate builds none of them at import (each is built at its
    first event), nor the delayed checks, nor the other function's settings (docs/PERFORMANCE.md)."""
    script = (
        "import sys\n"
        "import ecr_warden.notify.entry\n"
        "from ecr_warden.settings import GateSettings\n"
        "print('aws_events' , 'ecr_warden.contracts.aws_events' in sys.modules)\n"
        "print('gate settings', GateSettings.__pydantic_complete__)\n"
        "import ecr_warden.gate.entry\n"
        "from ecr_warden.contracts import aws_events, checks\n"
        "from ecr_warden.settings import NotifierSettings\n"
        "print('built', sorted(m.__name__ for m in (*aws_events.EVENT_MODELS.values(), checks.FindingsCheck,\n"
        "    checks.UnscannedCheck, aws_events.Inspector2FindingDetail) if m.__pydantic_complete__))\n"
        "print('notifier settings', NotifierSettings.__pydantic_complete__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers" / "shared"), "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.stdout.splitlines() == [
        "aws_events False",
        "gate settings False",
        "built []",
        "notifier settings False",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "inspector2-scan-critical.json",
        "inspector2-finding-critical-active.json",
        "ecr-image-action-push.json",
        "ecr-image-scan-complete.json",
        "cloudtrail-put-image-tag-mutability.json",
    ],
)
def test_a_deferred_event_model_validates_at_its_first_event(name: str) -> None:
    script = (
        "import json, sys\n"
        "from ecr_warden.contracts.parsing import parse_aws_event\n"
        f"event = parse_aws_event(json.loads(open({str(ROOT / 'events' / name)!r}).read()))\n"
        "print(type(event).__name__, type(event).__pydantic_complete__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers" / "shared"), "AWS_DEFAULT_REGION": "us-east-1"},
    )
    assert done.stdout.split()[1] == "True"


def _loaded(script: str, prefixes: tuple[str, ...]) -> list[str]:
    listing = f"import sys\nprint(sorted(n for n in sys.modules if n.startswith({prefixes!r})))\n"
    done = subprocess.run(
        [sys.executable, "-c", script + listing],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers" / "shared"), "AWS_DEFAULT_REGION": "us-east-1"},
    )
    loaded: list[str] = eval(done.stdout.strip().splitlines()[-1])  # a printed list of module names
    return loaded


def test_an_admin_request_loads_only_the_action_it_names() -> None:
    """`exempt list` imports the exempt action, not the seven others nor the gate's, the settings guard's or the
    runs' machinery some of them need (the admin function's cold start, docs/PERFORMANCE.md)."""
    script = (
        "from ecr_warden.admin.entry import parse\n"
        "from ecr_warden.actions.registry import admin_action\n"
        "request = parse({'action': 'exempt', 'operation': 'list', 'by': 'me'})\n"
        "admin_action(request.action).check(request)\n"
    )
    heavy = ("ecr_warden.actions.", "ecr_warden.gate.", "ecr_warden.runs", "ecr_warden.repository_settings.service")
    assert _loaded(script, heavy) == ["ecr_warden.actions.exempt", "ecr_warden.actions.registry"]


def test_the_gate_does_not_load_the_admin_functions_modules() -> None:
    assert _loaded("import ecr_warden.gate.entry\n", ("ecr_warden.admin", "ecr_warden.actions")) == []
