"""`ecr-warden adopt-retained`: deploy an environment again after `sam delete`, keeping the data it left behind.

`sam delete` keeps the resources whose DeletionPolicy is Retain (the audit table with its records and exemptions,
the dead-letter queues with their parked messages). They have fixed names, so a plain `sam deploy` of the same
environment fails: CloudFormation will not create a table or queue whose name exists. CloudFormation's resource
import makes them the new stack's own again, under their old logical IDs, after which `sam deploy` adds the rest:

    ecr-warden adopt-retained --environment dev --out adopt/     # reads template.yaml; which of them still exist
    aws cloudformation create-change-set --change-set-type IMPORT --stack-name ecr-warden-dev \
        --change-set-name adopt-retained --template-body file://adopt/template.json \
        --resources-to-import file://adopt/resources.json
    (wait, execute the change set, wait for IMPORT_COMPLETE), then sam deploy, then ecr-warden doctor

The import template is derived from template.yaml itself (the retained resources, their properties resolved for
the environment), so it cannot drift from what `sam deploy` then expects. Read-only: it only looks up which of the
retained resources exist (dynamodb:DescribeTable, sqs:GetQueueUrl).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecr_warden_tools.local.template import Resolver, load_template, stack_parameters

# What CloudFormation's import identifies each retained type by, and how to find the resource's identifier
IDENTIFIERS: dict[str, str] = {"AWS::DynamoDB::Table": "TableName", "AWS::SQS::Queue": "QueueUrl"}


def retained_resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's resources that `sam delete` leaves behind (DeletionPolicy Retain)."""
    return {
        logical_id: spec
        for logical_id, spec in template["Resources"].items()
        if spec.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")
    }


def import_plan(
    template: dict[str, Any], environment: str, region: str, account: str, exists: Callable[[str, str], str | None]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The import template, the resources to import, and the retained resources that no longer exist (they are
    simply created by the next `sam deploy`). `exists(type, name)` answers the resource's identifier or None."""
    parameters = stack_parameters(template, {"EnvironmentName": environment})
    resolver = Resolver(template, parameters, region, account)
    resources: dict[str, Any] = {}
    to_import: list[dict[str, Any]] = []
    missing: list[str] = []
    for logical_id, spec in retained_resources(template).items():
        kind = spec["Type"]
        if kind not in IDENTIFIERS:
            raise ValueError(f"{logical_id}: {kind} is retained but this tool does not know its import identifier")
        properties = resolver.resolve(spec.get("Properties") or {})
        name = properties.get("TableName") or properties.get("QueueName")
        identifier = exists(kind, str(name)) if name else None
        if identifier is None:
            missing.append(f"{logical_id} ({name})")
            continue
        resources[logical_id] = {
            "Type": kind,
            "DeletionPolicy": spec["DeletionPolicy"],
            "UpdateReplacePolicy": spec.get("UpdateReplacePolicy", "Retain"),
            "Properties": properties,
        }
        to_import.append(
            {
                "ResourceType": kind,
                "LogicalResourceId": logical_id,
                "ResourceIdentifier": {IDENTIFIERS[kind]: identifier},
            }
        )
    document = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"ecr-warden {environment}: the resources a deleted stack retained, imported back",
        "Resources": resources,
    }
    return document, to_import, missing


def _exists(clients: Callable[[str], Any]) -> Callable[[str, str], str | None]:
    from botocore.exceptions import ClientError

    def exists(kind: str, name: str) -> str | None:
        try:
            if kind == "AWS::DynamoDB::Table":
                clients("dynamodb").describe_table(TableName=name)
                return name
            return str(clients("sqs").get_queue_url(QueueName=name)["QueueUrl"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                return None
            raise

    return exists


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--environment", default="dev", help="EnvironmentName of the deleted deployment")
    parser.add_argument("--region", default=None, help="default: the standard AWS chain")
    parser.add_argument("--endpoint-url", default=None)
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--out", type=Path, required=True, help="directory for template.json and resources.json")


def run(args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    import boto3

    session = boto3.Session(region_name=args.region)
    region = session.region_name
    if not region:
        print("ecr-warden: error: no region: pass --region, or set AWS_REGION", file=sys.stderr)
        return 2
    made: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service, endpoint_url=args.endpoint_url)  # type: ignore[call-overload]
        return made[service]

    account = str(clients("sts").get_caller_identity()["Account"])
    document, to_import, missing = import_plan(
        load_template(args.template), args.environment, region, account, _exists(clients)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "template.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (args.out / "resources.json").write_text(json.dumps(to_import, indent=2) + "\n", encoding="utf-8")
    for resource in to_import:
        out(f"to import: {resource['LogicalResourceId']} {resource['ResourceIdentifier']}")
    for name in missing:
        out(f"not found (sam deploy creates it): {name}")
    if not to_import:
        out("nothing retained exists: a plain `sam deploy` works")
        return 0
    stack = f"ecr-warden-{args.environment}"
    out(
        "next:\n"
        f"  aws cloudformation create-change-set --change-set-type IMPORT --stack-name {stack} "
        f"--change-set-name adopt-retained --template-body file://{args.out / 'template.json'} "
        f"--resources-to-import file://{args.out / 'resources.json'}\n"
        f"  aws cloudformation wait change-set-create-complete --stack-name {stack} --change-set-name adopt-retained\n"
        f"  aws cloudformation execute-change-set --stack-name {stack} --change-set-name adopt-retained\n"
        f"  aws cloudformation wait stack-import-complete --stack-name {stack}\n"
        "  sam build && sam deploy (the same --config-env), then ecr-warden doctor"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m ecr_warden_tools.adopt`: the same as `ecr-warden adopt-retained`."""
    parser = argparse.ArgumentParser(prog="ecr-warden adopt-retained", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
