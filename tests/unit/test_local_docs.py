"""The policy documentation tells the truth: the README shows the shipped default, and every example in
docs/policy.md is a valid policy."""

from __future__ import annotations

import re

import pytest
import yaml

from ecr_warden.policy.load import default_policy_text, parse_policy
from tests.conftest import ROOT

_YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def test_the_readme_shows_the_shipped_default_policy() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("The shipped default is `layers/shared/ecr_warden/policy/default-policy.yaml`:", 1)[1]
    shown = _YAML_BLOCK.search(snippet)
    assert shown is not None
    assert yaml.safe_load(shown.group(1)) == yaml.safe_load(default_policy_text())


@pytest.mark.parametrize("example", _YAML_BLOCK.findall((ROOT / "docs" / "policy.md").read_text(encoding="utf-8")))
def test_every_policy_example_is_valid(example: str) -> None:
    parse_policy(example, source="docs/policy.md")
