"""Print the template as CloudFormation sees it after the SAM transform (run with the SAM CLI's Python).

Policies SAM adds on its own (managed policies, event-source permissions) exist only in this expanded form, so the
least-privilege tests read it instead of template.yaml. Local code locations are replaced by placeholder S3 URIs,
as `sam package` would do; nothing is uploaded and no AWS call is made.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

_CODE_KEYS = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


class _NoManagedPolicies(ManagedPolicyLoader):
    """Managed policy names resolve to their well-known ARNs without calling IAM."""

    def __init__(self) -> None:
        super().__init__(iam_client=None)

    def load(self) -> dict[str, str]:
        return {}


def main(path: str) -> None:
    template = yaml_parse(Path(path).read_text(encoding="utf-8"))
    for logical_id, resource in template["Resources"].items():
        key = _CODE_KEYS.get(resource.get("Type", ""))
        if key and isinstance(resource["Properties"].get(key), str):
            resource["Properties"][key] = f"s3://placeholder/{logical_id}.zip"
    boto3.setup_default_session(region_name="us-east-1")
    expanded = transform(template, {}, _NoManagedPolicies(), Parser())
    json.dump(expanded, sys.stdout, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
