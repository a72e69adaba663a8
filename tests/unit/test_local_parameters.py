"""`--parameter` overrides are checked against the template as CloudFormation checks them, in one line."""

from __future__ import annotations

import pytest

from ecr_warden_tools.local.template import TemplateError, load_template, stack_parameters
from tests.conftest import TEMPLATE


@pytest.fixture(scope="module")
def template() -> dict[str, object]:
    return load_template(TEMPLATE)


def test_valid_overrides_replace_the_defaults(template: dict[str, object]) -> None:
    parameters = stack_parameters(template, {"Mode": "audit", "GateReservedConcurrency": "0", "AlertEmail": ""})
    assert parameters["Mode"] == "audit"
    assert parameters["GateReservedConcurrency"] == "0"
    assert parameters["EnvironmentName"] == "dev"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Mode": "Audit"}, "--parameter Mode=Audit: must be one of enforce, audit (values are case-sensitive: audit)"),
        ({"Mode": "strict"}, "--parameter Mode=strict: must be one of enforce, audit"),
        ({"Foo": "bar"}, "--parameter Foo: the template has no such parameter (it has: "),
        ({"EnvironmentName": "x"}, "--parameter EnvironmentName=x: must match ^[a-z][a-z0-9-]{1,20}$"),
        ({"AlertEmail": "not-an-address"}, "--parameter AlertEmail=not-an-address: must match"),
        ({"NotifierReservedConcurrency": "-1"}, "must be between 0 and 1000"),
        ({"NotifierReservedConcurrency": "many"}, "must be a number"),
    ],
)
def test_invalid_overrides_are_one_line_errors(
    template: dict[str, object], overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateError) as refused:
        stack_parameters(template, overrides)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_length_limits_are_checked() -> None:
    template = {"Parameters": {"Name": {"Type": "String", "MinLength": 2, "MaxLength": 4}}, "Resources": {}}
    assert stack_parameters(template, {"Name": "abc"})["Name"] == "abc"
    with pytest.raises(TemplateError, match=r"length must be 2\.\.4"):
        stack_parameters(template, {"Name": "abcde"})
