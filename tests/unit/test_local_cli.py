"""The local stack's command line, without starting anything: options are checked before a stack starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecr_warden_tools.cli import _validated_event, build_parser
from tests.conftest import EVENTS


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1", "http"])
def test_local_refuses_a_port_out_of_range(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["local", "--port", port])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("ecr-warden local: error: argument --port: ")


@pytest.mark.parametrize(("command", "port"), [("local", "1"), ("local", "65535"), ("demo", "0")])
def test_ports_in_range_are_taken(command: str, port: str) -> None:
    assert build_parser().parse_args([command, "--port", port]).port == int(port)


def test_schedule_fire_takes_a_name() -> None:
    args = build_parser().parse_args(["schedule", "fire", "ReportFunctionNightly"])
    assert args.name == "ReportFunctionNightly"
    assert args.endpoint_url == "http://127.0.0.1:4566"


def test_send_accepts_the_projects_decision_event() -> None:
    event = _validated_event(str(EVENTS / "ecr-warden-decision-quarantined.json"))
    assert (event["source"], event["detail-type"]) == ("ecr-warden", "Image Decision")


def test_send_refuses_a_broken_decision_event_naming_the_field(tmp_path: Path) -> None:
    broken = json.loads((EVENTS / "ecr-warden-decision-quarantined.json").read_text())
    broken["detail"]["account"] = "not-an-account"
    path = tmp_path / "decision.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="account") as refused:
        _validated_event(str(path))
    assert str(refused.value).startswith(str(path))
    assert "\n" not in str(refused.value)
