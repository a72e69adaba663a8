"""Read template.yaml and resolve CloudFormation intrinsics well enough to provision it locally.

The local stack provisions from the template itself so that it cannot drift from what `sam deploy` creates.
Anything it does not understand is an error that names the resource, never a silent skip.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ecr_warden.errors import ConfigurationError


class TemplateError(ConfigurationError):
    """The template cannot be read or provisioned locally."""


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags (!Ref, !Sub, ...) into their long form."""


def _construct(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _tag in (
    "Ref",
    "Sub",
    "GetAtt",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Condition",
):
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read template: {exc.strerror}") from None
    try:
        document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - _CfnLoader derives from SafeLoader
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path}: no Resources section")
    return document


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Resolver:
    """Evaluates intrinsics against parameters, pseudo parameters and already-provisioned resources."""

    template: Mapping[str, Any]
    parameters: dict[str, str]
    region: str
    account_id: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._conditions: dict[str, bool] = {}

    @property
    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": f"ecr-warden-{self.parameters.get('EnvironmentName', 'local')}",
            "AWS::NoValue": "",
        }

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            kind = str(((self.template.get("Parameters") or {}).get(name) or {}).get("Type", "String"))
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                return self.parameters[name].split(",")  # as CloudFormation: "" is [""], which joins to ""
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        raise TemplateError(f"!Ref {name}: no such parameter or provisioned resource")

    def get_att(self, resource: str, attribute: str) -> str:
        try:
            return self.attributes[resource][attribute]
        except KeyError:
            raise TemplateError(f"!GetAtt {resource}.{attribute}: not available locally") from None

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            handler = self._intrinsics.get(key)
            if handler is not None:
                return handler(self, value)
        return {key: self.resolve(value) for key, value in node.items()}

    def _sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(substitute, text)

    def _if(self, value: list[Any]) -> Any:
        name, when_true, when_false = value
        return self.resolve(when_true if self.condition(name) else when_false)

    def _get_att(self, value: Any) -> str:
        resource, attribute = value if isinstance(value, list) else str(value).split(".", 1)
        return self.get_att(resource, attribute)

    _intrinsics: ClassVar[dict[str, Callable[[Resolver, Any], Any]]] = {
        "Ref": lambda self, v: self.ref(v),
        "Fn::Sub": lambda self, v: self._sub(v),
        "Fn::GetAtt": lambda self, v: self._get_att(v),
        "Fn::If": lambda self, v: self._if(v),
        "Fn::Equals": lambda self, v: str(self.resolve(v[0])) == str(self.resolve(v[1])),
        "Fn::Not": lambda self, v: not self.resolve(v[0]),
        "Fn::And": lambda self, v: all(self.resolve(item) for item in v),
        "Fn::Or": lambda self, v: any(self.resolve(item) for item in v),
        "Fn::Join": lambda self, v: str(v[0]).join(str(self.resolve(item)) for item in self.resolve(v[1])),
        "Fn::Select": lambda self, v: self.resolve(v[1])[int(self.resolve(v[0]))],
        "Fn::Split": lambda self, v: str(self.resolve(v[1])).split(v[0]),
        "Condition": lambda self, v: self.condition(v),
    }


def references(node: Any) -> set[str]:
    """Logical ids a template node refers to through Ref, GetAtt or ${...} in Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add((value if isinstance(value, list) else str(value).split("."))[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {name.split(".")[0] for name in _SUB_VARIABLE.findall(text)}
                if not isinstance(value, str):
                    found |= references(value[1])
            else:
                found |= references(value)
    return found


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in (template.get("Parameters") or {}).items()}


def stack_parameters(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """The template's defaults with the overrides applied, checked as CloudFormation checks them (unknown names,
    AllowedValues, AllowedPattern, MinLength/MaxLength, Number and MinValue/MaxValue): TemplateError, one line."""
    declared: dict[str, Any] = template.get("Parameters") or {}
    for name, value in overrides.items():
        if name not in declared:
            raise TemplateError(
                f"--parameter {name}: the template has no such parameter (it has: {', '.join(sorted(declared))})"
            )
        problem = _parameter_problem(declared[name] or {}, value)
        if problem:
            raise TemplateError(f"--parameter {name}={value}: {problem}")
    return {**parameter_defaults(template), **overrides}


def _parameter_problem(spec: Mapping[str, Any], value: str) -> str | None:
    allowed = [str(v) for v in spec.get("AllowedValues") or []]
    if allowed and value not in allowed:
        same_but_case = [v for v in allowed if v.lower() == value.lower()]
        hint = f" (values are case-sensitive: {same_but_case[0]})" if same_but_case else ""
        return f"must be one of {', '.join(allowed)}{hint}"
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        return f"must match {pattern}"
    if not int(spec.get("MinLength", 0)) <= len(value) <= int(spec.get("MaxLength", len(value))):
        return f"length must be {spec.get('MinLength', 0)}..{spec.get('MaxLength', 'any')}"
    if spec.get("Type") == "Number":
        return _number_problem(spec, value)
    return None


def _number_problem(spec: Mapping[str, Any], value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "must be a number"
    low, high = spec.get("MinValue"), spec.get("MaxValue")
    if (low is not None and number < float(low)) or (high is not None and number > float(high)):
        return f"must be between {low if low is not None else '-inf'} and {high if high is not None else 'inf'}"
    return None


def provisioning_order(template: Mapping[str, Any]) -> list[str]:
    """Resources sorted so that everything a resource refers to comes before it."""
    resources: dict[str, Any] = template["Resources"]
    globals_ = template.get("Globals") or {}
    pending = {
        name: (
            references(spec)
            | set(_as_list(spec.get("DependsOn")))
            | (references(globals_.get("Function")) if spec.get("Type") == "AWS::Serverless::Function" else set())
        )
        & set(resources)
        for name, spec in resources.items()
    }
    order: list[str] = []
    while pending:
        ready = sorted(name for name, deps in pending.items() if deps <= set(order))
        if not ready:
            raise TemplateError(f"circular references between resources: {', '.join(sorted(pending))}")
        order.extend(ready)
        for name in ready:
            del pending[name]
    return order


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
