"""The embedded local AWS stack: moto server + template resources + in-process functions + event plumbing."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import boto3
from botocore.config import Config

from ecr_warden.domain.images import Scope
from ecr_warden_tools.local import moto_patches, schedules
from ecr_warden_tools.local.catcher import SlackCatcher
from ecr_warden_tools.local.concurrency import ConcurrencyLog
from ecr_warden_tools.local.organization import (
    MEMBER_ROLE_NAME,
    Organization,
    ScopedClients,
    create_member_role,
    create_organization,
)
from ecr_warden_tools.local.provision import EventRule, ProvisionedStack, Provisioner, QueueSource
from ecr_warden_tools.local.replication import (
    REPLICATION_ROLE,
    REPLICATION_SERVICE,
    ReplicationConfigurations,
    Target,
    is_replication_role,
    replication_action_event,
)
from ecr_warden_tools.local.runtime import FunctionRuntime, HandlerError
from ecr_warden_tools.local.scanner import Scanner, load_fixture
from ecr_warden_tools.local.scopes import assumed_role_of
from ecr_warden_tools.local.scopes import regions as _region_list
from ecr_warden_tools.local.server import (
    EcrCall,
    LocalAwsApp,
    assumed_role_identity,
    caller_identity,
    cloudtrail_event,
    image_action_events,
)
from ecr_warden_tools.local.template import Resolver, load_template, stack_parameters

ACCOUNT_ID = "123456789012"  # moto's default account: the central account
T = TypeVar("T")


def _fresh_containers() -> None:
    """The functions run in this process, as in new Lambda containers: no client, policy or parameter cached by
    whatever ran here before (a client made for another endpoint would send this stack's calls elsewhere)."""
    from aws_lambda_powertools.utilities import parameters

    from ecr_warden import runtime
    from ecr_warden.adapters import aws

    aws.reset_clients()
    runtime.forget_policy_sources()
    parameters.clear_caches()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated


def _fresh_aws() -> None:
    """A new stack starts from an empty AWS: moto keeps its state per process, so a stack started after another
    in the same process (the demo after a test, or twice) would find the last one's tables and queues."""
    from moto.core.base_backend import BackendDict
    from moto.core.model_instances import reset_model_data

    BackendDict.reset()
    reset_model_data()


def _listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port (0: a free port); OSError(EADDRINUSE) if something holds it."""
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug's own server does
        listening.bind(("127.0.0.1", port))
        listening.listen(128)
    except OSError:
        listening.close()
        raise
    return listening


IDLE_POLL_SECONDS = (0.05, 0.5)  # delivery polling backs off from the first to the second while nothing arrives


class LocalStack:
    def __init__(  # noqa: PLR0913 - the options of `ecr-warden local`, one each
        self,
        template_path: Path,
        port: int = 0,
        region: str = "us-east-1",
        slack_webhook_url: str | None = None,
        parameters: dict[str, str] | None = None,
        echo: Callable[[str], None] = print,
        accounts: int = 1,
        regions: int = 1,
    ) -> None:
        if accounts < 1:  # the CLI allows up to MAX_ACCOUNTS; benchmarks go further through this API
            raise ValueError(f"accounts must be 1 or more, not {accounts}")
        self.template_path = template_path.resolve()
        self.port, self.region = port, region
        self.central = Scope(ACCOUNT_ID, region)
        self.accounts, self.regions = accounts, _region_list(region, regions)
        self.organization = Organization("", self.central, (), tuple(self.regions))
        self.replication = ReplicationConfigurations()
        self.clients = ScopedClients(self.endpoint_url, ACCOUNT_ID)  # made again once the port is known
        self._replications: queue.Queue[tuple[str, Scope, dict[str, Any], dict[str, Any]]] = queue.Queue()
        self._concurrency: dict[QueueSource, ConcurrencyLog] = {}
        self._running_batches: dict[QueueSource, int] = {}
        self._batch_threads: set[threading.Thread] = set()
        self._patterns: dict[str, Any] = {}  # rule name -> moto EventPattern
        self.slack_webhook_url = slack_webhook_url
        self.parameter_overrides = parameters or {}
        self.echo = echo
        self.finding_events = True  # continuous-scan `Inspector2 Finding` events along with each scan
        self.scanner = Scanner(region, ACCOUNT_ID)
        self.provisioned = ProvisionedStack()
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.catcher: SlackCatcher | None = None
        self._server: Any = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set by requests that may enqueue deliveries, and by stop()
        self._outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self._async_invocations: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._in_flight = 0  # events emitted but not yet on the bus, plus deliveries being run
        self._in_flight_lock = threading.Lock()

    def _track(self, delta: int) -> None:
        with self._in_flight_lock:
            self._in_flight += delta

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalStack:
        template = load_template(self.template_path)  # fail before anything starts
        parameters = stack_parameters(template, self.parameter_overrides)
        moto_patches.apply()
        _fresh_containers()
        _fresh_aws()
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietRequestHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return  # one line per AWS call drowns the handlers' logs

        app = LocalAwsApp(DomainDispatcherApplication(create_backend_app), self)
        listening = _listen(self.port)  # bound here: werkzeug prints and exits on a busy port
        try:
            self._server = make_server(
                "127.0.0.1", self.port, app, threaded=True, request_handler=QuietRequestHandler, fd=listening.fileno()
            )
        finally:
            listening.close()  # the server holds its own duplicate of the socket
        self.port = self._server.server_address[1]
        self._spawn("moto-server", self._server.serve_forever)
        self.clients = ScopedClients(self.endpoint_url, ACCOUNT_ID)
        try:
            if self.accounts > 1 or len(self.regions) > 1:
                parameters = stack_parameters(template, {**self._organize(), **self.parameter_overrides})
            resolver = Resolver(template, parameters, self.region, ACCOUNT_ID)
            self.provisioned = Provisioner(self.client, template, self.template_path.parent, resolver).run()
            self._create_member_roles()
            self._concurrency = {source: ConcurrencyLog() for source in self.provisioned.queue_sources}
            self._configure_slack()
            base_env = {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
            self.runtimes = {
                logical_id: FunctionRuntime(spec, base_env, self.region, ACCOUNT_ID)
                for logical_id, spec in self.provisioned.functions.items()
            }
        except BaseException:
            self.stop()
            raise
        self._spawn("event-emitter", self._emit_loop)
        self._spawn("event-delivery", self._delivery_loop)
        self._spawn("async-invoke", self._async_loop)
        self._spawn("replication", self._replication_loop)
        return self

    # -- the organization -----------------------------------------------------------------------------------

    def _organize(self) -> dict[str, str]:
        """Create the organization and its members; the template parameters that put the stack in organization
        mode (the user's own --parameter values win). Several regions of one account need it too: a single-account
        deployment acts in its own region only, and only member.yaml's rules bring other regions' events."""
        org_id, members = create_organization(self.client("organizations"), self.accounts - 1)
        self.organization = Organization(org_id, self.central, tuple(members), tuple(self.regions))
        # runs (reconcile, sweep, report) cover every emulated region by default, as OrganizationRegions does
        return {
            "OrganizationId": org_id,
            "MemberRoleName": MEMBER_ROLE_NAME,
            "OrganizationRegions": ",".join(self.regions),
        }

    def _create_member_roles(self) -> None:
        """member.yaml's role in every member (IAM is global: once per account)."""
        outputs = self.provisioned.outputs
        central_roles = ("ScanGateFunctionRoleArn", "SettingsGuardFunctionRoleArn", "AdminFunctionRoleArn")
        trusted = [outputs[k] for k in central_roles if k in outputs]
        for member in self.organization.members:
            iam = self.clients.client("iam", Scope(member, self.region))
            create_member_role(iam, trusted, self.organization.id, ACCOUNT_ID)

    def scoped_client(self, service: str, account: str | None = None, region: str | None = None) -> Any:
        """A client in an account and region of the stack (default: the central ones); a member is reached with
        credentials assumed into it."""
        return self.clients.client(service, Scope(account or ACCOUNT_ID, region or self.region))

    def stop(self) -> None:
        # Workers first: one may be half-way through a delivery that still talks to the server.
        # They finish the invocation they are in and take no new work; the server is stopped after them.
        self._stopping.set()
        self._wake.set()
        with self._in_flight_lock:
            batches = list(self._batch_threads)
        workers = [t for t in self._threads if t.name != "moto-server" and t is not threading.current_thread()]
        workers += batches
        for thread in workers:
            thread.join(timeout=5)
        if self._server is not None:
            serving = any(t.name == "moto-server" and t.is_alive() for t in self._threads)
            if serving:  # shutdown() waits for serve_forever to notice: never call it when nothing serves
                self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.catcher is not None:
            self.catcher.stop()
            self.catcher = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def client(self, service: str) -> Any:
        """A client of the local endpoint; the stack never builds one that could reach real AWS."""
        session = boto3.Session(
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        )
        return session.client(  # type: ignore[call-overload]
            service, endpoint_url=self.endpoint_url, config=Config(retries={"mode": "standard"})
        )

    def _configure_slack(self) -> None:
        secret_arn = self.provisioned.outputs.get("SlackWebhookSecretArn")
        if not secret_arn:
            return
        url = self.slack_webhook_url
        if url is None:
            self.catcher = SlackCatcher(echo=self.echo)
            self.catcher.start()
            url = self.catcher.url
        self.client("secretsmanager").put_secret_value(SecretId=secret_arn, SecretString=json.dumps({"url": url}))

    # -- what AWS would emit --------------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        self._track(+1)
        self._outbox.put(event)

    def emit_ecr_call(self, call: EcrCall, scope: Scope | None = None, access_key: str | None = None) -> None:
        """What ECR emits for a mutating call in `scope` (default: the central one): `ECR Image Action` for pushes
        and deletes, and the CloudTrail record, which CloudTrail writes for failed calls too (with errorCode and
        errorMessage). A successful push or delete is then replicated as the registry's configuration says."""
        scope = scope or self.central
        assumed = assumed_role_of(access_key, scope.account) if access_key else None
        if call.error_code is None:
            response = call.response or {}
            for event in image_action_events(call.operation, call.request, response, scope.region, scope.account):
                self.emit(event)
            if not is_replication_role(assumed[0] if assumed else None):  # replicas are not replicated again
                self._replicate(call, scope)
        if assumed:
            identity = assumed_role_identity(assumed[0], assumed[1], scope.account, access_key or "")
            if is_replication_role(assumed[0]):
                identity["invokedBy"] = REPLICATION_SERVICE
        else:
            identity = caller_identity(call.user_agent, self._role_of, scope.account)
        event = cloudtrail_event(call.operation, call.request, call.response, identity, call.user_agent, scope)
        if call.error_code is not None:
            event["detail"] |= {"errorCode": call.error_code, "errorMessage": call.error_message}
        self.emit(event)

    def _role_of(self, function_name: str) -> str | None:
        spec = self.provisioned.function(function_name)
        return spec.role_arn if spec else None

    def _emit_loop(self) -> None:
        events, sqs = self.client("events"), self.client("sqs")
        while not self._stopping.is_set():
            try:
                first = self._outbox.get(timeout=0.5)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < 10 and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                central = [e for e in batch if self._is_central(e)]
                if central:
                    self._put_on_bus(events, central)
                for event in batch:
                    if not self._is_central(event):
                        self._forward(sqs, event)
            finally:
                self._track(-len(batch))

    def _is_central(self, event: dict[str, Any]) -> bool:
        return (event.get("account", ACCOUNT_ID), event.get("region", self.region)) == (ACCOUNT_ID, self.region)

    def _forward(self, sqs: Any, event: dict[str, Any]) -> None:
        """member.yaml's rules: an event of another account or region reaches the central default bus as it is
        (its own account and region), where the functions' rules match it. moto's PutEvents would stamp the
        caller's account and region on it, so the match and the delivery are done here."""
        for rule in self.provisioned.rules:
            if rule.bus != "default" or not self._pattern(rule).matches_event(cast(Any, event)):
                continue
            try:
                sqs.send_message(QueueUrl=rule.delivery_queue_url, MessageBody=json.dumps(event))
            except Exception as exc:  # as EventBridge: a failed target loses this event, never the emitter
                self.echo(f"could not forward {event.get('detail-type')!r} to {rule.name}: {type(exc).__name__}")

    def _pattern(self, rule: EventRule) -> Any:
        """The rule's pattern as moto's EventBridge matches it (with moto_patches' flattening), parsed once."""
        from moto.events.models import EventPattern

        if rule.name not in self._patterns:
            self._patterns[rule.name] = EventPattern.load(json.dumps(rule.pattern))
        return self._patterns[rule.name]

    def _put_on_bus(self, events: Any, batch: list[dict[str, Any]]) -> None:
        """Put what AWS would emit on the default bus; a failure loses this batch (logged), never the emitter."""
        try:
            events.put_events(
                Entries=[
                    {
                        "Source": e["source"],
                        "DetailType": e["detail-type"],
                        "Detail": json.dumps(e["detail"]),
                        "Resources": e.get("resources", []),
                        "EventBusName": "default",
                    }
                    for e in batch
                ]
            )
        except Exception as exc:  # the emitter must outlive any one failed call
            kinds = sorted({str(e["detail-type"]) for e in batch})
            self.echo(
                f"could not put {len(batch)} event(s) ({', '.join(kinds)}) on the bus: {type(exc).__name__}: {exc}"
            )

    # -- delivery to functions ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Something may have reached a queue the stack delivers from: poll now rather than after the back-off."""
        self._wake.set()

    def _idle(self, wait: float) -> float:
        """Sleep until woken (a request that can enqueue work) or `wait` passes; the next wait doubles."""
        if self._wake.wait(wait):
            self._wake.clear()
            return IDLE_POLL_SECONDS[0]
        return min(wait * 2, IDLE_POLL_SECONDS[1])

    def _delivery_loop(self) -> None:
        sqs = self.client("sqs")
        wait = IDLE_POLL_SECONDS[0]
        while not self._stopping.is_set():
            delivered = 0
            for rule in self._while_running(self.provisioned.rules):
                self._track(+1)
                try:
                    delivered += self._deliver(sqs, rule)
                finally:
                    self._track(-1)
            for source in self._while_running(self.provisioned.queue_sources):
                delivered += self._poll_source(sqs, source)
            wait = self._idle(wait) if not delivered else IDLE_POLL_SECONDS[0]

    def _while_running(self, items: list[T]) -> Iterator[T]:
        """The items, until the stack is stopping: a stopping stack takes no new work."""
        for item in items:
            if self._stopping.is_set():
                return
            yield item

    def _receivable(self, queue_url: str) -> bool:
        """Whether a queue holds a message a receive would return, asked of the in-process SQS backend: an idle
        stack then makes no HTTP call at all (any doubt: poll)."""
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[ACCOUNT_ID][self.region].queues.get(queue_url.rsplit("/", 1)[-1])
        return queue is None or bool(queue.messages)

    def _deliver(self, sqs: Any, rule: EventRule) -> int:
        if not self._receivable(rule.delivery_queue_url):
            return 0
        messages = sqs.receive_message(QueueUrl=rule.delivery_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        for message in self._while_running(messages):
            sqs.delete_message(QueueUrl=rule.delivery_queue_url, ReceiptHandle=message["ReceiptHandle"])
            event = json.loads(message["Body"])
            self.echo(f"event {event.get('detail-type')!r} matched rule {rule.name} -> {rule.function}")
            self._invoke_with_retries(rule.function, event)
        return len(messages)

    def _poll_source(self, sqs: Any, source: QueueSource) -> int:
        """Lambda's SQS event source: up to MaximumConcurrency batches in flight at once (one, serially, without
        it). A FIFO queue gives no batch of a message group while another of the group's messages is in flight."""
        if source.max_concurrency == 1:
            self._track(+1)
            try:
                messages = self._receive_batch(sqs, source)
                if messages:
                    self._run_batch(sqs, source, messages)
                return len(messages)
            finally:
                self._track(-1)
        received = 0
        while self._batches_running(source) < source.max_concurrency and not self._stopping.is_set():
            self._track(+1)  # until the batch's thread ends: wait_idle must not see a received batch as idle
            messages = self._receive_batch(sqs, source)
            if not messages:
                self._track(-1)
                break
            received += len(messages)
            thread = threading.Thread(  # boto3 clients are thread-safe: the batches share the poller's
                target=self._run_concurrent_batch, args=(sqs, source, messages), name="sqs-batch", daemon=True
            )
            with self._in_flight_lock:
                self._running_batches[source] = self._running_batches.get(source, 0) + 1
                self._batch_threads.add(thread)
            thread.start()
        return received

    def _batches_running(self, source: QueueSource) -> int:
        with self._in_flight_lock:
            return self._running_batches.get(source, 0)

    def _run_concurrent_batch(self, sqs: Any, source: QueueSource, messages: list[dict[str, Any]]) -> None:
        try:
            self._run_batch(sqs, source, messages)
        finally:
            with self._in_flight_lock:
                self._running_batches[source] -= 1
                self._batch_threads.discard(threading.current_thread())
            self._track(-1)
            self.wake()

    def _receive_batch(self, sqs: Any, source: QueueSource) -> list[dict[str, Any]]:
        if not self._receivable(source.queue_url):
            return []
        messages: list[dict[str, Any]] = sqs.receive_message(
            QueueUrl=source.queue_url,
            MaxNumberOfMessages=min(10, source.batch_size),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def _run_batch(self, sqs: Any, source: QueueSource, messages: list[dict[str, Any]]) -> None:
        """One invocation with a batch; with ReportBatchItemFailures only the failed records stay on the queue,
        otherwise a failed invocation leaves the whole batch for a later retry."""
        records = [self._record(source, m) for m in messages]
        groups = [str(r["attributes"]["MessageGroupId"]) for r in records if r["attributes"].get("MessageGroupId")]
        self.echo(f"{len(records)} message(s) from {source.queue_arn.rsplit(':', 1)[-1]} -> {source.function}")
        log = self._concurrency.setdefault(source, ConcurrencyLog())
        started = log.start(groups)
        try:
            try:
                result = self.runtimes[source.function].invoke({"Records": records})
            except HandlerError as error:
                self.echo(f"{source.function} failed on a batch: {error.error_type}: {error.message}")
                return
            failed = (
                {f.get("itemIdentifier") for f in (result or {}).get("batchItemFailures", [])}
                if (source.report_failures and isinstance(result, dict))
                else set()
            )
            for m in messages:
                if m["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=m["ReceiptHandle"])
        finally:
            log.end(started, groups)

    def _record(self, source: QueueSource, message: dict[str, Any]) -> dict[str, Any]:
        """An SQS record as Lambda builds it (FIFO queues' MessageGroupId among the attributes, as SQS gives it)."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": source.queue_arn,
            "awsRegion": self.region,
        }

    def concurrency(self, source: str) -> dict[str, Any]:
        """Peaks of an SQS event source's invocations in flight: overall, per MessageGroupId, and per account
        (a group id's part before the first '#'). `source`: the SAM event's id, the queue's name, URL or ARN, or
        the function's logical id."""
        for queue_source in self.provisioned.queue_sources:
            names = (
                queue_source.event_id,
                queue_source.function,
                queue_source.queue_arn,
                queue_source.queue_url,
                queue_source.queue_arn.rsplit(":", 1)[-1],
            )
            if source in names:
                return self._concurrency.setdefault(queue_source, ConcurrencyLog()).summary()
        raise LookupError(f"no SQS event source {source!r}")

    def invoke_async(self, logical_id: str, event: Any) -> None:
        self._track(+1)
        self._async_invocations.put((logical_id, event))

    def _async_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                logical_id, event = self._async_invocations.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._invoke_with_retries(logical_id, event)
            finally:
                self._track(-1)

    def _invoke_with_retries(self, logical_id: str, event: Any) -> None:
        """Lambda's asynchronous invocation: retries, then the function's on-failure destination."""
        runtime = self.runtimes[logical_id]
        attempts = 1 + runtime.spec.max_retries
        for attempt in range(1, attempts + 1):
            try:
                runtime.invoke(event)
                return
            except HandlerError as error:
                self.echo(f"{logical_id} failed (attempt {attempt}/{attempts}): {error.error_type}: {error.message}")
                last = error
            if self._stopping.is_set():
                return  # no retries, and no on-failure record, from a stack that is going away
        if runtime.spec.on_failure_arn:
            record = {
                "version": "1.0",
                "timestamp": datetime.now(UTC).isoformat(),
                "requestContext": {
                    "requestId": runtime.invocations[-1].request_id,
                    "functionArn": runtime.arn,
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": attempts,
                },
                "requestPayload": event,
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled",
                },
                "responsePayload": last.payload(),
            }
            queue_name = runtime.spec.on_failure_arn.rsplit(":", 1)[-1]
            sqs = self.client("sqs")
            sqs.send_message(
                QueueUrl=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"],
                MessageBody=json.dumps(record, default=str),
            )

    # -- schedules ------------------------------------------------------------------------------------------

    def fire_schedule(self, name: str) -> dict[str, Any]:
        """Fire one of the template's schedules now, once, as its scheduler would at its next tick (the local stack
        never fires them on a timer). The target runs asynchronously: `wait_idle()` waits for it."""
        schedule = schedules.find(self.provisioned.schedules, name)
        payload = schedules.schedule_payload(schedule, self.region, ACCOUNT_ID)
        if schedule.function is not None:
            self.echo(f"schedule {name} ({schedule.expression}) fired -> {schedule.function}")
            self.invoke_async(schedule.function, payload)
        elif schedule.target_arn.startswith("arn:aws:sqs:"):
            sqs = self.client("sqs")
            url = sqs.get_queue_url(QueueName=schedule.target_arn.rsplit(":", 1)[-1])["QueueUrl"]
            body = payload if isinstance(payload, str) else json.dumps(payload)
            sqs.send_message(QueueUrl=url, MessageBody=body)
            self.echo(f"schedule {name} ({schedule.expression}) fired -> {schedule.target_arn}")
        else:
            raise schedules.ScheduleError(
                f"schedule {name}: its target {schedule.target_arn} is neither a template function nor an SQS queue, "
                "and cannot be delivered locally"
            )
        return schedules.describe(schedule) | {"fired": True, "payload": payload}

    def list_schedules(self) -> list[dict[str, Any]]:
        return [schedules.describe(s) for _, s in sorted(self.provisioned.schedules.items())]

    # -- the scanner ----------------------------------------------------------------------------------------

    def resolve_tag(self, repository: str, tag: str, scope: Scope | None = None) -> str | None:
        ecr = self.clients.client("ecr", scope or self.central)
        try:
            images = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ecr.exceptions.ImageNotFoundException:
            return None
        details = images.get("imageDetails") or []
        return details[0]["imageDigest"] if details else None

    def scan(  # noqa: PLR0913 - the image, the fixture, and the scanner's options: `ecr-warden scan`'s own
        self,
        repository: str,
        fixture: str | list[dict[str, Any]] = "clean",
        tag: str | None = None,
        digest: str | None = None,
        scanner: str = "enhanced",
        findings_lag: float = 0.0,
        account: str | None = None,
        region: str | None = None,
    ) -> dict[str, Any]:
        """Play the scanner for one pushed image in an account and region of the stack (default: the central ones)
        and emit the scan-complete event the real service would, in that scope.
        `findings_lag`: seconds before its findings are listed (the per-finding events are not sent then)."""
        if scanner not in ("enhanced", "basic"):
            raise ValueError("scanner must be 'enhanced' or 'basic'")
        scope = self.scope(account, region)
        if digest is None:
            if tag is None:
                raise ValueError("give the image's tag or digest")
            digest = self.resolve_tag(repository, tag, scope)
            if digest is None:
                raise LookupError(f"no image {repository}:{tag} in {scope.account}/{scope.region}")
        ecr = self.clients.client("ecr", scope)
        details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])["imageDetails"]
        tags = list(details[0].get("imageTags") or []) if details else []
        findings = load_fixture(fixture) if isinstance(fixture, str) else fixture
        image = self.scanner.record(repository, digest, tags, scanner, findings, findings_lag, scope)
        events = self.scanner.scan_events(image, self.finding_events and not findings_lag)
        for event in events:
            self.emit(event)
        counts = self.scanner.counts(image, omit_zero=False)
        where = "" if scope == self.central else f" in {scope.account}/{scope.region}"
        self.echo(f"scanned {repository}@{digest[:19]}{where} ({scanner}): {counts}")
        return {
            "account": scope.account,
            "region": scope.region,
            "repository": repository,
            "digest": digest,
            "tags": tags,
            "counts": counts,
            "events": [e["detail-type"] for e in events],
        }

    def scope(self, account: str | None = None, region: str | None = None) -> Scope:
        """An account and region of the stack (default: the central ones); anything else is a ValueError."""
        scope = Scope(account or ACCOUNT_ID, region or self.region)
        if scope.account not in self.organization.accounts:
            raise ValueError(f"account {scope.account} is not in the stack: {', '.join(self.organization.accounts)}")
        if scope.region not in self.regions:
            raise ValueError(f"region {scope.region} is not in the stack: {', '.join(self.regions)}")
        return scope

    # -- replication ----------------------------------------------------------------------------------------

    def _replicate(self, call: EcrCall, source: Scope) -> None:
        """Queue what replication copies of a successful push or delete; done asynchronously, as ECR does."""
        if call.operation not in ("PutImage", "BatchDeleteImage"):
            return
        if not self.replication.targets(source, str(call.request.get("repositoryName", ""))):
            return
        self._track(+1)
        self._replications.put((call.operation, source, call.request, call.response or {}))

    def _replication_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                operation, source, request, response = self._replications.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                for target in self.replication.targets(source, str(request.get("repositoryName", ""))):
                    self._replicate_to(source, target, operation, request, response)
            finally:
                self._track(-1)

    def _replicate_to(
        self, source: Scope, target: Target, operation: str, request: dict[str, Any], response: dict[str, Any]
    ) -> None:
        """Play one replicated operation in a destination, with ECR's replication role there (so its events are
        the destination's own, and it is replicated no further)."""
        if operation == "BatchDeleteImage" and not target.deletes:
            return  # ECR's default: deletions and tag removals stay in the source
        repository = str(request["repositoryName"])
        try:
            ecr = self.clients.client("ecr", target.scope, REPLICATION_ROLE)
            if operation == "PutImage":
                self._ensure_repository(ecr, repository)
                image = response.get("image") or {}
                args = {
                    "repositoryName": repository,
                    "imageManifest": image.get("imageManifest") or request["imageManifest"],
                    "imageManifestMediaType": image.get("imageManifestMediaType")
                    or request.get("imageManifestMediaType", ""),
                }
                tag = (image.get("imageId") or {}).get("imageTag") or request.get("imageTag")
                put = ecr.put_image(**args, **({"imageTag": tag} if tag else {}))
                digest = put["image"]["imageId"]["imageDigest"]
                self.emit(replication_action_event(source, target.scope, repository, digest, tag))
            else:
                ecr.batch_delete_image(repositoryName=repository, imageIds=request.get("imageIds") or [])
            self.echo(f"replicated {operation} {repository} to {target.scope.account}/{target.scope.region}")
        except Exception as exc:  # one destination's failure is that destination's; ECR retries, we report
            self.echo(
                f"replication of {operation} {repository} to {target.scope.account}/{target.scope.region} failed: "
                f"{type(exc).__name__}: {exc}"
            )

    @staticmethod
    def _ensure_repository(ecr: Any, repository: str) -> None:
        """ECR replication creates a missing destination repository (default settings without a creation
        template)."""
        try:
            ecr.describe_repositories(repositoryNames=[repository])
        except ecr.exceptions.RepositoryNotFoundException:
            ecr.create_repository(repositoryName=repository)

    def state(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "organization": {
                "id": self.organization.id,
                "central": {"account": ACCOUNT_ID, "region": self.region},
                "members": list(self.organization.members),
                "regions": list(self.regions),
            },
            "outputs": self.provisioned.outputs,
            "functions": {lid: spec.name for lid, spec in self.provisioned.functions.items()},
            "invocations": [
                asdict(inv) | {"result": None} for runtime in self.runtimes.values() for inv in runtime.invocations
            ],
            "slack_messages": list(self.catcher.messages) if self.catcher else [],
            "pending_events": self._outbox.qsize(),
            "schedules": self.list_schedules(),
            # SQS event sources with a MaximumConcurrency: peak batches in flight, per message group and account
            "concurrency": {
                source.event_id: self.concurrency(source.event_id)
                for source in self.provisioned.queue_sources
                if source.max_concurrency > 1
            },
        }

    def wait_idle(self, timeout: float = 15.0) -> bool:
        """Wait until every emitted event is on the bus and every matching delivery has run."""
        deadline = time.monotonic() + timeout
        sqs = self.client("sqs")
        quiet_checks = 0
        while time.monotonic() < deadline:
            queues = [rule.delivery_queue_url for rule in self.provisioned.rules]
            queues += [source.queue_url for source in self.provisioned.queue_sources]
            idle = self._in_flight == 0 and not any(
                int(value)
                for queue_url in queues
                for value in sqs.get_queue_attributes(
                    QueueUrl=queue_url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"].values()
            )
            quiet_checks = quiet_checks + 1 if idle else 0
            if quiet_checks >= 2:
                return True
            time.sleep(0.1)
        return False
