"""docs/DEPLOY.md and samconfig.toml tell the truth: the cost shown is what benchmarks/cost.py prints for the stated
workload, and every environment names its stack by the convention the doctor relies on and sets Mode itself."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import ROOT

DEPLOY = (ROOT / "docs" / "DEPLOY.md").read_text(encoding="utf-8")
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
ENVIRONMENTS = [name for name, section in SAMCONFIG.items() if isinstance(section, dict)]


def test_the_cost_shown_is_what_the_model_prints() -> None:
    shown = re.search(r"\$ \.venv/bin/python benchmarks/cost\.py --pushes-per-day (\d+)\n(.*?)```", DEPLOY, re.DOTALL)
    assert shown is not None, "docs/DEPLOY.md shows the output of benchmarks/cost.py for its workload"
    printed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cost.py"), "--pushes-per-day", shown[1]],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert printed == shown[2], "rerun the command and paste its output into docs/DEPLOY.md"
    assert f"{int(shown[1]):,} pushes a day" in DEPLOY


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_sets_its_name_mode_and_region(environment: str) -> None:
    section = SAMCONFIG[environment]
    overrides = dict(pair.split("=", 1) for pair in section["deploy"]["parameters"]["parameter_overrides"].split())
    assert overrides["Mode"] in ("audit", "enforce"), "Mode is explicit: the template's default enforces"
    assert section["global"]["parameters"]["stack_name"] == f"ecr-warden-{overrides['EnvironmentName']}"
    assert section["global"]["parameters"]["region"]
    assert section["deploy"]["parameters"]["confirm_changeset"] is True, "the change set is read before it applies"
