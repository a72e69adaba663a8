from __future__ import annotations

from pathlib import Path

import pytest

from ecr_warden_tools.local.moto_patches import _flatten_like_eventbridge
from ecr_warden_tools.local.template import Resolver, TemplateError, load_template, provisioning_order, references
from tests.conftest import TEMPLATE


def resolver(template: dict[str, object] | None = None) -> Resolver:
    doc = template or {
        "Parameters": {"Env": {"Default": "dev"}},
        "Conditions": {"IsDev": {"Fn::Equals": [{"Ref": "Env"}, "dev"]}},
        "Resources": {},
    }
    return Resolver(
        doc,
        {"Env": "dev", "Empty": ""},
        "eu-west-1",
        "111122223333",
        refs={"Queue": "https://q"},
        attributes={"Queue": {"Arn": "arn:aws:sqs:eu-west-1:1:q"}},
    )


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"Fn::Sub": "app-${Env}-${AWS::Region}"}, "app-dev-eu-west-1"),
        ({"Fn::Sub": ["${X}-${Queue.Arn}", {"X": {"Ref": "Env"}}]}, "dev-arn:aws:sqs:eu-west-1:1:q"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:eu-west-1:1:q"),
        ({"Fn::If": ["IsDev", "yes", "no"]}, "yes"),
        ({"Fn::Join": ["/", ["a", {"Ref": "Env"}]]}, "a/dev"),
        ({"Fn::Not": [{"Fn::Equals": [{"Ref": "Empty"}, ""]}]}, False),
        ({"Ref": "AWS::AccountId"}, "111122223333"),
    ],
)
def test_intrinsics(node: object, expected: object) -> None:
    assert resolver().resolve(node) == expected


def test_unknown_reference_is_an_error() -> None:
    with pytest.raises(TemplateError, match="Nope"):
        resolver().resolve({"Ref": "Nope"})


def test_template_short_forms_load() -> None:
    doc = load_template(TEMPLATE)
    assert doc["Resources"]["AuditTable"]["Properties"]["TableName"] == {
        "Fn::Sub": "ecr-warden-${EnvironmentName}-audit-v2"
    }
    order = provisioning_order(doc)
    assert order.index("AuditTable") < order.index("ScanGateFunction")
    assert order.index("ScanGateDeadLetterQueue") < order.index("ScanGateFunction")


def test_references_found_in_sub() -> None:
    assert references({"Fn::Sub": "${A}-${B.Arn}-${AWS::Region}"}) == {"A", "B", "AWS::Region"}


def test_bad_template_errors(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text("Resources: [unclosed\n")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_template(broken)
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.yaml")


def test_eventbridge_flattening_of_arrays_of_objects() -> None:
    flat = _flatten_like_eventbridge({"detail": {"resources": [{"type": "A"}, {"type": "B"}], "x": 1}})
    assert flat == {"detail.resources.type": ["A", "B"], "detail.x": 1}
