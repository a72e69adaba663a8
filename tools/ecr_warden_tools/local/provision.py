"""Create the resources of template.yaml on the local (moto) endpoint, from the template itself."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecr_warden_tools.local.template import Resolver, TemplateError, provisioning_order

# Types that exist only for IAM, monitoring or packaging in a real account and have no local behaviour.
NOT_NEEDED_LOCALLY = frozenset(
    {
        "AWS::Serverless::LayerVersion",
        "AWS::Lambda::LayerVersion",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::Lambda::Permission",
        "AWS::Logs::LogGroup",
        # who may put events on the default bus: the local stack forwards member events itself (stack.py)
        "AWS::Events::EventBusPolicy",
    }
)
# Queue properties that change what a consumer sees locally (FIFO ordering and deduplication among them).
_QUEUE_ATTRIBUTES = (
    "MessageRetentionPeriod",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


@dataclass(frozen=True)
class EventRule:
    """One EventBridge rule of a function, with the queue the local stack delivers its matches through."""

    function: str
    name: str
    bus: str
    pattern: dict[str, Any]
    delivery_queue_url: str


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source mapping: the local stack polls the queue and invokes the function with batches."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    event_id: str = ""  # the SAM event's logical id
    max_concurrency: int = 1  # ScalingConfig.MaximumConcurrency: batches in flight at once (Lambda: 2..1000)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory_mb: int
    role_arn: str
    max_retries: int = 2
    on_failure_arn: str | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule of the template (a SAM `ScheduleV2`/`Schedule` event, or an `AWS::Scheduler::Schedule`).

    The local stack never runs it on a timer: `LocalStack.fire_schedule(name)` (or `ecr-warden schedule fire NAME`)
    delivers it once, as the scheduler would at its next tick."""

    name: str
    expression: str
    kind: str  # "ScheduleV2" (EventBridge Scheduler) or "Schedule" (an EventBridge rule)
    target_arn: str
    function: str | None  # logical id of the template function it invokes, if it invokes one
    input: str | None  # the target's input text, as the template gives it
    enabled: bool = True
    group: str = "default"
    timezone: str | None = None


@dataclass
class ProvisionedStack:
    outputs: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    rules: list[EventRule] = field(default_factory=list)
    queue_sources: list[QueueSource] = field(default_factory=list)
    physical: dict[str, str] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)

    def function(self, name_or_arn: str) -> FunctionSpec | None:
        name = name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
        for spec in self.functions.values():
            if name in (spec.name, spec.logical_id):
                return spec
        return None


def local_role_arn(account_id: str, logical_id: str) -> str:
    """The role a function runs as locally; CloudTrail events for its calls name it, as in a real account."""
    return f"arn:aws:iam::{account_id}:role/ecr-warden-local-{logical_id}"


class Provisioner:
    def __init__(
        self, client: Callable[[str], Any], template: dict[str, Any], template_dir: Path, resolver: Resolver
    ) -> None:
        self._client = client
        self.template = template
        self.template_dir = template_dir
        self.resolver = resolver
        self.stack = ProvisionedStack()
        self._handlers: dict[str, Callable[[str, dict[str, Any]], None]] = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SNS::Topic": self._topic,
            "AWS::SNS::Subscription": self._subscription,
            "AWS::SQS::Queue": self._queue,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::SSM::Parameter": self._parameter,
            "AWS::Events::EventBus": self._event_bus,
            "AWS::KMS::Key": self._kms_key,
            "AWS::Serverless::Function": self._function,
            "AWS::Scheduler::ScheduleGroup": self._schedule_group,
            "AWS::Scheduler::Schedule": self._scheduler_schedule,
        }

    def client(self, service: str) -> Any:
        return self._client(service)

    def run(self) -> ProvisionedStack:
        resources: dict[str, Any] = self.template["Resources"]
        for logical_id in provisioning_order(self.template):
            spec = resources[logical_id]
            kind = spec.get("Type", "?")
            if "Condition" in spec and not self.resolver.condition(spec["Condition"]):
                continue
            if kind in NOT_NEEDED_LOCALLY:
                self._not_needed(logical_id, kind)
                continue
            handler = self._handlers.get(kind)
            if handler is None:
                raise TemplateError(f"resource {logical_id}: type {kind} cannot be provisioned locally")
            try:
                handler(logical_id, self.resolver.resolve(spec.get("Properties") or {}))
            except TemplateError:
                raise
            except Exception as exc:  # an SDK error while creating: name the resource, keep the cause
                raise TemplateError(f"resource {logical_id} ({kind}): {exc}") from exc
        for name, output in (self.template.get("Outputs") or {}).items():
            if "Condition" in output and not self.resolver.condition(output["Condition"]):
                continue
            self.stack.outputs[name] = str(self.resolver.resolve(output["Value"]))
        self.stack.physical = dict(self.resolver.refs)
        return self.stack

    def _not_needed(self, logical_id: str, kind: str) -> None:
        """Nothing to create, but other resources may name it: a role's ARN is what CloudTrail events name as the
        caller of a function's calls, so it is the same ARN a deployed stack's `!GetAtt Role.Arn` resolves to."""
        self.resolver.refs[logical_id] = f"local-{logical_id}"
        if kind == "AWS::IAM::Role":
            self.resolver.attributes[logical_id] = {"Arn": local_role_arn(self.resolver.account_id, logical_id)}
        elif kind == "AWS::Logs::LogGroup":
            self.resolver.attributes[logical_id] = {"Arn": self._arn("logs", f"log-group:local-{logical_id}:*")}

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.resolver.region}:{self.resolver.account_id}:{resource}"

    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("TableName") or f"local-{logical_id}"
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(**args)
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[logical_id] = {"Arn": self._arn("dynamodb", f"table/{name}")}

    def _topic(self, logical_id: str, props: dict[str, Any]) -> None:
        arn = self.client("sns").create_topic(Name=props.get("TopicName") or f"local-{logical_id}")["TopicArn"]
        self.resolver.refs[logical_id] = arn
        self.resolver.attributes[logical_id] = {"TopicArn": arn, "TopicName": arn.rsplit(":", 1)[-1]}

    def _subscription(self, logical_id: str, props: dict[str, Any]) -> None:
        arn = self.client("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
        )["SubscriptionArn"]
        self.resolver.refs[logical_id] = arn

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        fifo = str(props.get("FifoQueue", "")).lower() == "true"
        name = props.get("QueueName") or f"local-{logical_id}{'.fifo' if fifo else ''}"
        attributes = {key: _attribute(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
        url = self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.resolver.refs[logical_id] = url
        self.resolver.attributes[logical_id] = {
            "Arn": self._arn("sqs", name),
            "QueueName": name,
            "QueueUrl": url,
        }

    def _secret(self, logical_id: str, props: dict[str, Any]) -> None:
        args = {"Name": props["Name"], "SecretString": props.get("SecretString", "")}
        if props.get("Description"):
            args["Description"] = props["Description"]
        arn = self.client("secretsmanager").create_secret(**args)["ARN"]
        self.resolver.refs[logical_id] = arn
        self.resolver.attributes[logical_id] = {"Id": arn}

    def _parameter(self, logical_id: str, props: dict[str, Any]) -> None:
        self.client("ssm").put_parameter(
            Name=props["Name"], Value=str(props["Value"]), Type=props.get("Type", "String"), Overwrite=True
        )
        self.resolver.refs[logical_id] = props["Name"]

    def _kms_key(self, logical_id: str, props: dict[str, Any]) -> None:
        metadata = self.client("kms").create_key(Description=props.get("Description", logical_id))["KeyMetadata"]
        self.resolver.refs[logical_id] = metadata["KeyId"]
        self.resolver.attributes[logical_id] = {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}

    def _event_bus(self, logical_id: str, props: dict[str, Any]) -> None:
        arn = self.client("events").create_event_bus(Name=props["Name"])["EventBusArn"]
        self.resolver.refs[logical_id] = props["Name"]
        self.resolver.attributes[logical_id] = {"Arn": arn, "Name": props["Name"]}

    def _function(self, logical_id: str, props: dict[str, Any]) -> None:
        merged = _merge_globals(self.resolver.resolve(self.template.get("Globals", {}).get("Function", {})), props)
        name = merged.get("FunctionName") or f"local-{logical_id}"
        code_dir = (self.template_dir / merged["CodeUri"]).resolve()
        if not (code_dir / f"{merged['Handler'].rsplit('.', 1)[0]}.py").is_file():
            raise TemplateError(f"resource {logical_id}: handler {merged['Handler']} not found in {code_dir}")
        role_arn = str(merged.get("Role") or local_role_arn(self.resolver.account_id, logical_id))
        invoke_config: dict[str, Any] = merged.get("EventInvokeConfig") or {}
        self._register_lambda(name, role_arn, code_dir, merged)
        spec = FunctionSpec(
            logical_id=logical_id,
            name=name,
            code_dir=code_dir,
            handler=merged["Handler"],
            environment={k: str(v) for k, v in (merged.get("Environment", {}).get("Variables") or {}).items()},
            timeout=int(merged.get("Timeout", 3)),
            memory_mb=int(merged.get("MemorySize", 128)),
            role_arn=role_arn,
            max_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
            on_failure_arn=(invoke_config.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination"),
        )
        self.stack.functions[logical_id] = spec
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[logical_id] = {"Arn": self._arn("lambda", f"function:{name}")}
        for event_id, event in (props.get("Events") or {}).items():
            self._function_event(spec, event_id, event)

    def _function_event(self, spec: FunctionSpec, event_id: str, event: dict[str, Any]) -> None:
        kind = event.get("Type")
        properties = event.get("Properties") or {}
        if kind in ("EventBridgeRule", "CloudWatchEvent"):
            self._rule(spec, event_id, properties)
        elif kind == "SQS":
            self._queue_source(spec, event_id, properties)
        elif kind == "ScheduleV2":
            self._schedule_v2(spec, event_id, properties)
        elif kind == "Schedule":
            self._schedule_rule(spec, event_id, properties)
        else:
            raise TemplateError(
                f"resource {spec.logical_id}: event {event_id} of type {kind} cannot be provisioned locally"
            )

    def _register_lambda(self, name: str, role_arn: str, code_dir: Path, merged: dict[str, Any]) -> None:
        """Create the function in moto too, so `aws lambda get-function` and list-functions see it."""
        iam = self.client("iam")
        role_name = role_arn.rsplit("/", 1)[-1]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                }
            ],
        }
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted(code_dir.rglob("*.py")):
                zf.write(path, path.relative_to(code_dir).as_posix())
        self.client("lambda").create_function(
            FunctionName=name,
            Runtime=merged.get("Runtime", "python3.13"),
            Role=role_arn,
            Handler=merged["Handler"],
            Code={"ZipFile": archive.getvalue()},
            Timeout=int(merged.get("Timeout", 3)),
            MemorySize=int(merged.get("MemorySize", 128)),
            Architectures=merged.get("Architectures", ["arm64"]),
            Environment={
                "Variables": {k: str(v) for k, v in (merged.get("Environment", {}).get("Variables") or {}).items()}
            },
        )

    def _queue_source(self, spec: FunctionSpec, event_id: str, props: dict[str, Any]) -> None:
        arn = str(props["Queue"])
        url = self.client("sqs").get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        report = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
        concurrency = int((props.get("ScalingConfig") or {}).get("MaximumConcurrency", 1))
        if concurrency < 1:
            raise TemplateError(f"resource {spec.logical_id}: event {event_id}: MaximumConcurrency must be positive")
        self.stack.queue_sources.append(
            QueueSource(spec.logical_id, url, arn, int(props.get("BatchSize", 10)), report, event_id, concurrency)
        )

    def _rule(self, spec: FunctionSpec, event_id: str, props: dict[str, Any]) -> None:
        bus = props.get("EventBusName", "default")
        rule_name = f"{spec.name}-{event_id}"[:64]
        sqs = self.client("sqs")
        queue_name = f"local-deliver-{spec.logical_id}-{event_id}"[:80]
        queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        events = self.client("events")
        events.put_rule(Name=rule_name, EventBusName=bus, EventPattern=json.dumps(props["Pattern"]), State="ENABLED")
        events.put_targets(
            Rule=rule_name,
            EventBusName=bus,
            Targets=[{"Id": "deliver", "Arn": self._arn("sqs", queue_name)}],
        )
        self.stack.rules.append(EventRule(spec.logical_id, rule_name, bus, props["Pattern"], queue_url))

    # -- schedules: recorded, registered with the local Scheduler / EventBridge, fired only on request ------------

    def _record_schedule(self, schedule: ScheduleSpec) -> None:
        if schedule.name in self.stack.schedules:
            raise TemplateError(f"schedule {schedule.name}: two schedules of the template have this name")
        self.stack.schedules[schedule.name] = schedule

    def _schedule_v2(self, spec: FunctionSpec, event_id: str, props: dict[str, Any]) -> None:
        """SAM `ScheduleV2`: an EventBridge Scheduler schedule invoking the function (named `<Function><Event>` by
        default, as SAM names it)."""
        name = str(props.get("Name") or f"{spec.logical_id}{event_id}")
        target = {"Arn": self._arn("lambda", f"function:{spec.name}"), "RoleArn": spec.role_arn}
        if props.get("Input") is not None:
            target["Input"] = str(props["Input"])
        self._create_scheduler_schedule(name, props, target, spec.logical_id)

    def _scheduler_schedule(self, logical_id: str, props: dict[str, Any]) -> None:
        """`AWS::Scheduler::Schedule`: the same as a `ScheduleV2` event, with the target spelled out."""
        target = dict(props.get("Target") or {})
        if not target.get("Arn"):
            raise TemplateError(f"resource {logical_id}: AWS::Scheduler::Schedule without Target.Arn")
        target.setdefault("RoleArn", f"arn:aws:iam::{self.resolver.account_id}:role/ecr-warden-local-scheduler")
        spec = self.stack.function(str(target["Arn"]))
        name = str(props.get("Name") or logical_id)
        self._create_scheduler_schedule(name, props, target, spec.logical_id if spec else None)
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[logical_id] = {
            "Arn": self._arn("scheduler", f"schedule/{props.get('GroupName') or 'default'}/{name}")
        }

    def _create_scheduler_schedule(
        self, name: str, props: dict[str, Any], target: dict[str, Any], function: str | None
    ) -> None:
        group = str(props.get("GroupName") or "default")
        state = str(props.get("State") or "ENABLED")
        args: dict[str, Any] = {
            "Name": name,
            "GroupName": group,
            "ScheduleExpression": str(props["ScheduleExpression"]),
            "FlexibleTimeWindow": props.get("FlexibleTimeWindow") or {"Mode": "OFF"},
            "Target": {key: target[key] for key in ("Arn", "RoleArn", "Input") if key in target},
            "State": state,
        }
        if props.get("ScheduleExpressionTimezone"):
            args["ScheduleExpressionTimezone"] = props["ScheduleExpressionTimezone"]
        self.client("scheduler").create_schedule(**args)
        self._record_schedule(
            ScheduleSpec(
                name=name,
                expression=args["ScheduleExpression"],
                kind="ScheduleV2",
                target_arn=str(target["Arn"]),
                function=function,
                input=target.get("Input"),
                enabled=state == "ENABLED",
                group=group,
                timezone=props.get("ScheduleExpressionTimezone"),
            )
        )

    def _schedule_rule(self, spec: FunctionSpec, event_id: str, props: dict[str, Any]) -> None:
        """SAM `Schedule`: an EventBridge rule with a schedule expression targeting the function."""
        name = str(props.get("Name") or f"{spec.name}-{event_id}")[:64]
        enabled = props.get("Enabled", True) is not False and props.get("State", "ENABLED") == "ENABLED"
        events = self.client("events")
        events.put_rule(
            Name=name, ScheduleExpression=str(props["Schedule"]), State="ENABLED" if enabled else "DISABLED"
        )
        target: dict[str, Any] = {"Id": spec.logical_id, "Arn": self._arn("lambda", f"function:{spec.name}")}
        if props.get("Input") is not None:
            target["Input"] = str(props["Input"])
        events.put_targets(Rule=name, Targets=[target])
        self._record_schedule(
            ScheduleSpec(
                name=name,
                expression=str(props["Schedule"]),
                kind="Schedule",
                target_arn=target["Arn"],
                function=spec.logical_id,
                input=target.get("Input"),
                enabled=enabled,
            )
        )

    def _schedule_group(self, logical_id: str, props: dict[str, Any]) -> None:
        name = str(props.get("Name") or f"local-{logical_id}")
        arn = self.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        self.resolver.refs[logical_id] = name
        self.resolver.attributes[logical_id] = {"Arn": arn}


def _attribute(value: Any) -> str:
    """A queue attribute as SQS takes it: YAML booleans are `true`/`false`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _merge_globals(globals_: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """SAM's Globals semantics: maps merge (function wins), lists append, scalars are overridden."""
    merged: dict[str, Any] = dict(globals_)
    for key, value in props.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            merged[key] = _merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = base + value
        else:
            merged[key] = value
    return merged
