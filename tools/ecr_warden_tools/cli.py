"""ecr-warden command-line tool: the local stack, sending sample events, the local scanner and the demo."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_INCOMPLETE = 3  # release: done, but some recorded tags now point at other images and were not restored
# A real Slack webhook for `local` comes from a file or this variable, never the command line (the process list)
SLACK_WEBHOOK_URL_VARIABLE = "ECR_WARDEN_SLACK_WEBHOOK_URL"


def _default_template() -> Path:
    here = Path.cwd() / "template.yaml"
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[2] / "template.yaml"


def _fail(message: str) -> int:
    print(f"ecr-warden: error: {message}", file=sys.stderr)
    return 2


def _port(lowest: int) -> Callable[[str], int]:
    """An argparse type: a TCP port from `lowest` (0 lets the system pick a free one) to 65535."""

    def port(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
        if not lowest <= value <= 65535:
            raise argparse.ArgumentTypeError(f"{value} is not a port: use {lowest}..65535")
        return value

    return port


def _parameters(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--parameter {pair!r}: expected KEY=VALUE")
        result[key] = value
    return result


class _RemovedWebhookFlag(argparse.Action):
    """`--slack-webhook-url URL` put the secret in the process list; it is refused (and not echoed)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser.error(
            f"--slack-webhook-url was removed: put the URL in a file and pass --slack-webhook-url-file PATH, or set "
            f"{SLACK_WEBHOOK_URL_VARIABLE}"
        )


def slack_webhook_url(args: argparse.Namespace) -> str | None:
    """The real webhook for `local`: the file's first line, else the environment variable, else None (the local
    catcher). Errors name the option, never the content."""
    path: Path | None = args.slack_webhook_url_file
    if path is None:
        return os.environ.get(SLACK_WEBHOOK_URL_VARIABLE) or None
    try:
        url = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--slack-webhook-url-file {path}: cannot read it ({type(exc).__name__})") from None
    if not url:
        raise ValueError(f"--slack-webhook-url-file {path}: the file is empty")
    return url


def cmd_local(args: argparse.Namespace) -> int:
    from ecr_warden.errors import ConfigurationError
    from ecr_warden_tools.local.stack import LocalStack

    try:
        webhook = slack_webhook_url(args)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        parameters = _parameters(args.parameter)
    except ValueError as exc:
        return _fail(str(exc))
    stack = LocalStack(
        args.template,
        port=args.port,
        region=args.region,
        slack_webhook_url=webhook,
        parameters=parameters,
        echo=lambda line: print(line, flush=True),
        accounts=args.accounts,
        regions=args.regions,
    )
    try:
        stack.start()
    except KeyboardInterrupt:
        print("interrupted while starting: nothing left running", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ConfigurationError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_serve_error(args.port, exc))
    stopped = threading.Event()

    def stop(*_: Any) -> None:
        stopped.set()

    try:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if args.accounts > 1 or args.regions > 1:
            from ecr_warden_tools.local.organization import describe

            describe(stack.organization, stack.endpoint_url, lambda line: print(line, flush=True))
        _print_ready(stack)
        while not stopped.wait(3600):
            pass
    finally:
        stack.stop()
        print("local stack stopped", flush=True)
    return 0


def _print_ready(stack: Any) -> None:
    print("stack outputs:")
    for name, value in sorted(stack.provisioned.outputs.items()):
        print(f"  {name} = {value}")
    if stack.catcher:
        print(f"slack webhook catcher: {stack.catcher.url}")
    if stack.provisioned.schedules:
        names = ", ".join(stack.provisioned.schedules)
        print(f"schedules (never fired by a timer; `ecr-warden schedule fire NAME`): {names}")
    print(
        f"ecr-warden local stack ready on {stack.endpoint_url} (region {stack.region}); Ctrl-C stops it",
        flush=True,
    )


def _serve_error(port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on 127.0.0.1 is busy (another `ecr-warden local`?): stop what holds it, or pass "
            "--port with a free port"
        )
    return f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}"


def _post(endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the endpoint is the user's local stack
        endpoint.rstrip("/") + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as exc:
        raise RuntimeError(json.loads(exc.read() or b"{}").get("error", str(exc))) from None


DECISION_SOURCE = "ecr-warden"  # the gate's decision events go to the decision bus, where the notifier listens


def _validated_event(path: str) -> dict[str, Any]:
    """The event in a file, checked as its consumer checks it; ValueError with a one-line reason naming the file."""
    from ecr_warden.contracts.decision import DecisionEvent
    from ecr_warden.contracts.parsing import parse_aws_event, validate_model
    from ecr_warden.errors import PermanentError

    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    try:
        if isinstance(raw, dict) and raw.get("source") == DECISION_SOURCE:
            validate_model(DecisionEvent, raw, what="decision event")
        else:
            parse_aws_event(raw)
    except PermanentError as exc:
        raise ValueError(f"{path}: {exc}") from None
    result: dict[str, Any] = raw
    return result


def _bus_for(args: argparse.Namespace, event: dict[str, Any]) -> str:
    if args.bus:
        return str(args.bus)
    return f"ecr-warden-{args.environment}" if event["source"] == DECISION_SOURCE else "default"


def _unmatched_warning(client: Any, path: str, event: dict[str, Any], bus: str) -> str | None:
    """A warning if no rule on the bus matches the event (nothing would consume it), else None."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        rules = client.list_rules(EventBusName=bus).get("Rules", [])
        for rule in rules:
            if rule.get("EventPattern") and client.test_event_pattern(
                EventPattern=rule["EventPattern"], Event=json.dumps(event)
            ).get("Result"):
                return None
    except (BotoCoreError, ClientError) as exc:
        return f"warning: {path}: cannot check which rules on bus {bus} match it ({exc})"
    return (
        f"warning: {path}: no rule on bus {bus} matches this event (source {event['source']!r}, detail-type "
        f"{event['detail-type']!r}): nothing will consume it"
    )


def cmd_send(args: argparse.Namespace) -> int:
    """Validate event files and put them on the bus their consumer listens on: the same check the functions make."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        events = [(path, _validated_event(path)) for path in args.files]
    except ValueError as exc:
        return _fail(str(exc))
    client = boto3.client("events", endpoint_url=args.endpoint_url, region_name=args.region)
    for path, event in events:
        bus = _bus_for(args, event)
        warning = _unmatched_warning(client, path, event, bus)
        if warning:
            print(warning, file=sys.stderr)
        entry: PutEventsRequestEntryTypeDef = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]),
            "Resources": event.get("resources", []),
            "EventBusName": bus,
        }
        try:
            response = client.put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as exc:
            return _fail(f"put-events to {args.endpoint_url}: {exc}")
        if response.get("FailedEntryCount"):
            return _fail(f"{path}: put-events rejected it: {response['Entries']}")
        print(f"sent {path} to bus {bus} at {args.endpoint_url}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """Push a synthetic image (a valid manifest; the registry only sees JSON) to the local stack, with PutImage as
    `docker push` ends. The stack emits the `ECR Image Action` PUSH event the gate reacts to."""
    import time

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from ecr_warden_tools.local.images import DOCKER_MANIFEST, image_manifest

    session = boto3.Session(region_name=args.region)
    if session.get_credentials() is None:  # the local stack takes any credentials
        session = boto3.Session(
            region_name=args.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        )
    seed = args.seed or f"{args.repository}:{args.tag}:{time.time_ns()}"
    try:
        if args.account:  # a member of the local organization: as its admins do, through the access role
            role = f"arn:aws:iam::{args.account}:role/OrganizationAccountAccessRole"
            sts = session.client("sts", endpoint_url=args.endpoint_url)
            assumed = sts.assume_role(RoleArn=role, RoleSessionName="ecr-warden-push")["Credentials"]
            session = boto3.Session(
                region_name=args.region,
                aws_access_key_id=assumed["AccessKeyId"],
                aws_secret_access_key=assumed["SecretAccessKey"],
                aws_session_token=assumed["SessionToken"],
            )
        pushed = session.client("ecr", endpoint_url=args.endpoint_url).put_image(
            repositoryName=args.repository,
            imageManifest=image_manifest(seed),
            imageManifestMediaType=DOCKER_MANIFEST,
            imageTag=args.tag,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return _fail(f"push {args.repository}:{args.tag}: {error.get('Code')}: {error.get('Message')}")
    except BotoCoreError as exc:
        return _fail(f"push {args.repository}:{args.tag} to {args.endpoint_url}: {exc}")
    digest = pushed["image"]["imageId"]["imageDigest"]
    where = f" in {args.account}/{args.region}" if args.account else ""
    print(f"pushed {args.repository}:{args.tag}{where} as {digest} (seed {seed!r})")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    body = {
        "repository": args.repository,
        "tag": args.tag,
        "digest": args.digest,
        "fixture": args.fixture,
        "scanner": args.scanner,
        "findings_lag": args.findings_lag,
        "account": args.account,
        "region": args.region,
    }
    try:
        result = _post(args.endpoint_url, "/_ecr_warden/scan", body)
    except (RuntimeError, OSError) as exc:
        return _fail(f"scan failed: {exc}")
    print(json.dumps(result, indent=2))
    return 0


def _get(endpoint: str, path: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + path, timeout=30) as response:  # noqa: S310
            result: dict[str, Any] = json.loads(response.read())
            return result
    except urllib.error.HTTPError as exc:
        raise RuntimeError(json.loads(exc.read() or b"{}").get("error", str(exc))) from None


def cmd_schedule_list(args: argparse.Namespace) -> int:
    try:
        found = _get(args.endpoint_url, "/_ecr_warden/schedules")["schedules"]
    except (RuntimeError, OSError) as exc:
        return _fail(f"cannot list schedules at {args.endpoint_url}: {exc}")
    if not found:
        print("the template has no schedules")
    for schedule in found:
        print(f"{schedule['name']}  {schedule['expression']}  {schedule['state']}  -> {schedule['target']}")
    return 0


def cmd_schedule_fire(args: argparse.Namespace) -> int:
    try:
        fired = _post(args.endpoint_url, "/_ecr_warden/schedules/fire", {"name": args.name})
    except (RuntimeError, OSError) as exc:
        return _fail(f"schedule fire {args.name}: {exc}")
    note = "" if fired["state"] == "ENABLED" else " (it is DISABLED in the template: AWS would not run it)"
    print(f"fired {fired['name']} -> {fired['target']} with {json.dumps(fired['payload'])}{note}")
    return 0


def _deployment(args: argparse.Namespace) -> Any:
    import os

    from ecr_warden_tools.admin import Deployment

    region = _region(args)
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    os.environ["AWS_DEFAULT_REGION"] = region
    return Deployment(args.environment, region)


def _admin_client(args: argparse.Namespace) -> Any:
    from ecr_warden_tools.admin_client import AdminClient

    deployment = _deployment(args)
    return AdminClient(
        deployment.environment, deployment.region, args.in_process, args.function_name,
        getattr(args, "account", None), getattr(args, "registry_region", None),
    )  # fmt: skip


def _image(args: argparse.Namespace) -> dict[str, str]:
    return {"tag": args.tag} if args.tag else {"digest": args.digest}


def cmd_release(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin_client import run

    payload = {"action": "release", "repository": args.repository, "digest": args.digest, "reason": args.reason}
    return run(args, _admin_client(args), payload)


def cmd_quarantine(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin_client import run

    payload = {"action": "quarantine", "repository": args.repository, **_image(args), "reason": args.reason}
    return run(args, _admin_client(args), payload)


def cmd_rescan(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin_client import run

    payload = {"action": "rescan", "repository": args.repository, **_image(args), "reason": args.reason}
    return run(args, _admin_client(args), payload)


def cmd_enforce(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin_client import run

    payload: dict[str, Any] = {"action": "enforce", "dry_run": not args.apply, "reason": args.reason}
    if args.repository:
        payload["repository"] = args.repository
    return run(args, _admin_client(args), payload)


def cmd_report(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin_client import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, caller
    from ecr_warden_tools.report_render import merge, render

    fmt = "json" if args.json else args.format
    payload: dict[str, Any] = {"action": "report", "price_per_gb_month": args.price_per_gb_month, "by": caller(args)}
    if args.repository:
        payload["repository"] = args.repository
    if args.limit:
        payload["limit"] = args.limit
    client, parts, token = _admin_client(args), [], None
    while True:
        answer = client.call({**payload, **({"next_token": token} if token else {})})
        if not answer.get("ok"):
            error = answer.get("error") or {}
            where = f" ({error['field']})" if error.get("field") not in (None, "<root>") else ""
            print(f"ecr-warden: {error.get('type', 'error')}{where}: {error.get('message', answer)}", file=sys.stderr)
            return EXIT_REFUSED if error.get("type") == "rejected" else EXIT_ERROR
        parts.append(answer["result"])
        token = answer["result"].get("next_token")
        done = sum(len(part.get("repositories", [])) for part in parts)
        if token or len(parts) > 1:
            print(f"report: {done} repositories so far{'…' if token else ', done'}", file=sys.stderr)
        if not token:
            break
    sys.stdout.write(render(merge(parts), fmt))
    return EXIT_OK


SWEEP_KINDS = {
    "exemption_expired": "exempt images the next decision would block (exemption expired or revoked)",
    "undecided": "images with a scan result but no decision (a missed event)",
    "unscanned": "images without a scan result past the policy's unscanned_after_seconds",
    "drift": "repositories whose settings drifted (fix: ecr-warden enforce)",
}


def cmd_sweep(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin_client import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, caller

    payload: dict[str, Any] = {"action": "sweep", "by": caller(args)}
    if args.apply:
        payload["apply"] = True
    if args.limit:
        payload["limit"] = args.limit
    client, token, swept = _admin_client(args), None, 0
    counts: dict[str, int] = dict.fromkeys(SWEEP_KINDS, 0)
    rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SWEEP_KINDS}
    while True:
        answer = client.call({**payload, **({"next_token": token} if token else {})})
        if not answer.get("ok"):
            error = answer.get("error") or {}
            where = f" ({error['field']})" if error.get("field") not in (None, "<root>") else ""
            print(f"ecr-warden: {error.get('type', 'error')}{where}: {error.get('message', answer)}", file=sys.stderr)
            return EXIT_REFUSED if error.get("type") == "rejected" else EXIT_ERROR
        result = answer["result"]
        swept += int(result.get("swept", 0))
        for kind in SWEEP_KINDS:
            counts[kind] += int(result.get("counts", {}).get(kind, 0))
            rows[kind] += result.get(kind, [])
        token = result.get("next_token")
        if token:
            print(f"sweep: {swept} repositories so far…", file=sys.stderr)
        else:
            break
    if args.json:
        print(json.dumps({"swept": swept, "counts": counts, **rows}, indent=2, default=str))
        return EXIT_OK
    print(f"swept {swept} repositories (report only: nothing changed or announced)")
    for kind, title in SWEEP_KINDS.items():
        print(f"{counts[kind]:>5}  {title}")
        for row in rows[kind]:
            where = row["repository"] + (f"@{row['digest']}" if row.get("digest") else "")
            detail = row.get("reason") or "; ".join(row.get("changes", []) + row.get("reports", []))
            detail = detail or row.get("scan_status") or ""
            print(f"       {where}  {detail}"[:200])
    return EXIT_OK


def cmd_exempt(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin_client import run

    payload: dict[str, Any] = {"action": "exempt", "operation": args.operation}
    for name in ("repository", "cve", "digest", "expires", "reason", "approver"):
        if getattr(args, name, None):
            payload[name] = getattr(args, name)
    if getattr(args, "include_inactive", False):
        payload["include_inactive"] = True
    return run(args, _admin_client(args), payload)


def cmd_gate(args: argparse.Namespace) -> int:
    from ecr_warden.adapters.audit_store import DynamoAuditStore
    from ecr_warden.adapters.aws import client
    from ecr_warden.domain.images import Scope
    from ecr_warden_tools.ci_gate import ImageDecisions, run

    deployment = _deployment(args)
    account = str(client("sts").get_caller_identity()["Account"])
    store = DynamoAuditStore(deployment.audit_table, Scope(account, deployment.region))
    return run(args, ImageDecisions(client("ecr"), store))


def cmd_doctor(args: argparse.Namespace) -> int:
    from ecr_warden_tools import doctor

    code: int = doctor.run(args)
    return code


def cmd_adopt(args: argparse.Namespace) -> int:
    from ecr_warden_tools import adopt

    code: int = adopt.run(args)
    return code


def cmd_slack_redrive(args: argparse.Namespace) -> int:
    from ecr_warden_tools.admin import redrive_slack

    sent, failed = redrive_slack(_deployment(args), limit=args.limit, default_secret=args.slack_secret)
    print(f"redriven: {sent} sent, {failed} still failing (left in the queue)")
    return 0 if not failed else 1


def cmd_migrate_audit(args: argparse.Namespace) -> int:
    from ecr_warden.adapters.aws import client
    from ecr_warden.domain.images import Scope
    from ecr_warden_tools.migrate import NothingToMigrate, migrate_audit

    deployment = _deployment(args)
    account = args.account or str(client("sts").get_caller_identity()["Account"])
    try:
        report = migrate_audit(
            client("dynamodb"),
            deployment.legacy_audit_table,
            deployment.audit_table,
            Scope(account, deployment.region),
            dry_run=args.dry_run,
        )
    except NothingToMigrate as exc:
        print(str(exc))
        return 0
    print(("dry run: " if args.dry_run else "") + report.summary())
    return 0


def _admin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--environment", default="dev", help="EnvironmentName of the deployment")
    parser.add_argument(
        "--region",
        default=None,
        help="region of the deployment (default: the standard AWS chain: AWS_REGION, AWS_DEFAULT_REGION, profile)",
    )
    parser.add_argument("--endpoint-url", default=None, help="e.g. the local stack's http://127.0.0.1:4566")


def _region(args: argparse.Namespace) -> str:
    """--region, else what boto3's standard chain says (environment, then profile); never a silent default."""
    if args.region:
        return str(args.region)
    import os

    import boto3

    # AWS_REGION first, as the AWS CLI v2 and the SDKs read it; then boto3's AWS_DEFAULT_REGION and profile
    region = os.environ.get("AWS_REGION") or boto3.session.Session().region_name
    if not region:
        raise SystemExit(
            "ecr-warden: error: no region: pass --region, or set AWS_REGION (or a region in your AWS profile)"
        )
    return str(region)


def cmd_demo(args: argparse.Namespace) -> int:
    from ecr_warden_tools.demo import run_demo

    run_demo(args.template, port=args.port, mode=args.mode)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ecr_warden import __version__
    from ecr_warden_tools.local.scopes import MAX_ACCOUNTS, REGIONS, account_argument, count_argument

    parser = argparse.ArgumentParser(prog="ecr-warden", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ecr-warden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="run the embedded local AWS stack in the foreground")
    local.add_argument("--port", type=_port(1), default=4566, help="1..65535 (default 4566)")
    local.add_argument("--region", default="us-east-1", help="the central region (default us-east-1)")
    local.add_argument(
        "--accounts",
        type=count_argument("accounts", MAX_ACCOUNTS),
        default=1,
        help=f"1..{MAX_ACCOUNTS}: more than 1 emulates an AWS Organization (the central account and members)",
    )
    local.add_argument(
        "--regions",
        type=count_argument("regions", len(REGIONS)),
        default=1,
        help=f"1..{len(REGIONS)}: registries in the central region, then {', '.join(REGIONS[1:4])}, ...",
    )
    local.add_argument(
        "--slack-webhook-url-file",
        type=Path,
        metavar="PATH",
        help=f"a file holding a real Slack webhook URL to use instead of the local catcher (or set "
        f"{SLACK_WEBHOOK_URL_VARIABLE}); the URL is never taken on the command line",
    )
    local.add_argument("--slack-webhook-url", action=_RemovedWebhookFlag, help=argparse.SUPPRESS)
    local.add_argument("--template", type=Path, default=None)
    local.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter override, e.g. Mode=audit",
    )
    local.set_defaults(func=cmd_local)

    send = sub.add_parser("send", help="validate event files and put them on an EventBridge bus")
    send.add_argument("files", nargs="+")
    send.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT)
    send.add_argument("--region", default="us-east-1")
    send.add_argument(
        "--bus",
        default=None,
        help="the bus to put every event on (default: `default` for AWS events, the decision bus "
        "ecr-warden-ENVIRONMENT for ecr-warden decision events)",
    )
    send.add_argument("--environment", default="dev", help="EnvironmentName, to name the decision bus (default dev)")
    send.set_defaults(func=cmd_send)

    push = sub.add_parser(
        "push",
        help="local stack only: push a synthetic image (no Docker needed), as `docker push` would",
        description="Push a synthetic single-platform image to the local stack with ECR PutImage. The stack emits "
        "`ECR Image Action` PUSH, as ECR does; then play the scanner with `ecr-warden scan`. The repository must "
        "exist (`aws ecr create-repository`).",
    )
    push.add_argument("--repository", required=True)
    push.add_argument("--tag", required=True)
    push.add_argument(
        "--seed",
        help="the same seed gives the same image (digest): pass the seed a push printed to put another tag on that "
        "image; default: a new image each time",
    )
    push.add_argument("--region", default="us-east-1")
    push.add_argument(
        "--account",
        type=account_argument,
        help="a member account of `ecr-warden local --accounts N` (pushed with credentials assumed into it)",
    )
    push.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT)
    push.set_defaults(func=cmd_push)

    scan = sub.add_parser("scan", help="local stack only: scan a pushed image with findings from a fixture")
    scan.add_argument("--repository", required=True)
    target = scan.add_mutually_exclusive_group(required=True)
    target.add_argument("--tag")
    target.add_argument("--digest")
    scan.add_argument("--fixture", default="clean", help="critical, high, clean, or a JSON file")
    scan.add_argument("--scanner", choices=["enhanced", "basic"], default="enhanced")
    scan.add_argument(
        "--findings-lag",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="list the findings only this long after the scan-complete event (as AWS may)",
    )
    scan.add_argument("--account", type=account_argument, help="the image's account (default: the central one)")
    scan.add_argument("--region", help="the image's region (default: the stack's central region)")
    scan.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT)
    scan.set_defaults(func=cmd_scan)

    _schedule_commands(sub)
    _admin_commands(sub)

    demo = sub.add_parser("demo", help="run the core loop on a fresh embedded local stack and show what happens")
    demo.add_argument("--port", type=_port(0), default=0, help="0 picks a free port")
    demo.add_argument("--mode", choices=["enforce", "audit"], default="enforce")
    demo.add_argument("--template", type=Path, default=None)
    demo.set_defaults(func=cmd_demo)
    return parser


def _schedule_commands(sub: Any) -> None:
    schedule = sub.add_parser(
        "schedule",
        help="local stack only: list the template's schedules, or fire one now (the local stack never fires them "
        "on a timer)",
    )
    actions = schedule.add_subparsers(dest="schedule_command", required=True)
    listing = actions.add_parser("list", help="the template's schedules: name, expression, state, target")
    listing.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT)
    listing.set_defaults(func=cmd_schedule_list)
    fire = actions.add_parser(
        "fire", help="deliver one schedule once, as its scheduler would at its next tick (asynchronous invoke)"
    )
    fire.add_argument("name", help="the schedule's name, as `ecr-warden schedule list` shows it")
    fire.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT)
    fire.set_defaults(func=cmd_schedule_fire)


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repository", required=True, help="the repository's name")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--tag", help="the image by tag (resolved to its digest before acting)")
    which.add_argument("--digest", help="the image by digest (sha256:...)")
    parser.add_argument("--reason", required=True, help="why (recorded in the audit table and the decision)")


ADMIN_EPILOG = "exit codes: 0 done, 1 refused (see the message), 2 invalid request or error, 3 release incomplete"


def _through_admin_function(
    parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int], registry: bool = True
) -> None:
    from ecr_warden_tools import admin_client

    admin_client.options(parser)
    _admin_options(parser)
    if registry:
        where = parser.add_argument_group("organization mode: the registry to act in (default: the deployment's own)")
        where.add_argument("--account", type=_account_id, help="the image's account, as its decision names it")
        where.add_argument(
            "--registry-region", help="the image's region, as its decision names it (--region: the deployment's)"
        )
    parser.set_defaults(func=func)


def _account_id(text: str) -> str:
    if not (len(text) == 12 and text.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r}: a 12-digit AWS account id")
    return text


def _exempt_commands(sub: Any) -> None:
    exempt = sub.add_parser("exempt", help="CVE exemptions in ecr-warden's own store: add, list, revoke")
    operations = exempt.add_subparsers(dest="operation", required=True)
    add = operations.add_parser("add", help="exempt a CVE until a date (no later than the policy allows)")
    add.add_argument("--cve", required=True, help="CVE-YYYY-NNNN or GHSA-xxxx-xxxx-xxxx")
    add.add_argument("--repository", required=True, help="the repository's name")
    add.add_argument("--digest", help="only this image (default: every image of the repository)")
    add.add_argument("--expires", required=True, help="a date or time, e.g. 2026-12-31 (midnight UTC)")
    add.add_argument("--reason", required=True, help="why the risk is accepted")
    add.add_argument("--approver", required=True, help="the approver's e-mail address")
    listing = operations.add_parser("list", help="the exemptions of a repository (or all), with their expiry")
    listing.add_argument("--repository", help="one repository (default: all)")
    listing.add_argument("--include-inactive", action="store_true", help="also expired and revoked ones")
    revoke = operations.add_parser("revoke", help="end an exemption now")
    revoke.add_argument("--cve", required=True, help="the exempted CVE or GHSA id")
    revoke.add_argument("--repository", required=True, help="the repository's name")
    revoke.add_argument("--digest", help="the image the exemption was for, if it was for one")
    revoke.add_argument("--reason", required=True, help="why it ends")
    for parser in (add, listing, revoke):
        parser.epilog = ADMIN_EPILOG
        _through_admin_function(parser, cmd_exempt)


def _admin_commands(sub: Any) -> None:
    release = sub.add_parser(
        "release", help="restore a blocked image's recorded tags, through the admin function", epilog=ADMIN_EPILOG
    )
    release.add_argument("--repository", required=True, help="the repository's name")
    release.add_argument("--digest", required=True, help="the blocked image's digest (sha256:...)")
    release.add_argument("--reason", required=True, help="why (recorded in the audit table and the decision)")
    _through_admin_function(release, cmd_release)
    quarantine = sub.add_parser(
        "quarantine", help="block an image now, through the admin function", epilog=ADMIN_EPILOG
    )
    _image_options(quarantine)
    _through_admin_function(quarantine, cmd_quarantine)
    rescan = sub.add_parser(
        "rescan", help="basic scanning: scan again (once a day); enhanced: show Inspector's coverage",
        epilog=ADMIN_EPILOG,
    )  # fmt: skip
    _image_options(rescan)
    _through_admin_function(rescan, cmd_rescan)
    enforce = sub.add_parser(
        "enforce", help="re-apply repository settings (a dry run unless --apply), through the admin function",
        epilog=ADMIN_EPILOG,
    )  # fmt: skip
    enforce.add_argument("--repository", help="one repository (default: every managed repository)")
    enforce.add_argument("--apply", action="store_true", help="change the settings (default: only report)")
    enforce.add_argument("--reason", required=True, help="why (recorded in the audit table)")
    _through_admin_function(enforce, cmd_enforce)
    _report_command(sub)
    sweep = sub.add_parser(
        "sweep", help="read-only: what the events missed (expired exemptions, undecided or unscanned images, drift)",
        epilog=ADMIN_EPILOG,
    )  # fmt: skip
    sweep.add_argument("--apply", action="store_true", help="re-decide expired exemptions (not offered yet: refused)")
    sweep.add_argument("--limit", type=int, default=None, help="repositories per invocation (default 200)")
    _through_admin_function(sweep, cmd_sweep)
    from ecr_warden_tools import runs_cli

    runs_cli.commands(sub, _through_admin_function)
    _exempt_commands(sub)
    _operator_commands(sub)


def _report_command(sub: Any) -> None:
    from ecr_warden_tools.report_render import FORMATS

    report = sub.add_parser(
        "report", help="read-only: drift, images by status, quarantines, exemptions, storage cost, lifecycle preview",
        epilog=ADMIN_EPILOG,
    )  # fmt: skip
    report.add_argument("--repository", help="one repository (default: every managed repository)")
    report.add_argument("--format", choices=FORMATS, default="table", help="output (default: an aligned table)")
    report.add_argument(
        "--price-per-gb-month", type=float, default=0.10,
        help="USD per GB-month for the cost estimate (default 0.10, ECR's us-east-1 storage price)",
    )  # fmt: skip
    report.add_argument("--limit", type=int, default=None, help="repositories per invocation (default 200)")
    _through_admin_function(report, cmd_report)


def _operator_commands(sub: Any) -> None:
    from ecr_warden_tools import adopt, ci_gate, doctor

    gate = sub.add_parser(
        "gate", help="wait for ecr-warden's decision on an image and exit 0 deployable, 1 blocked, 2 undecided",
        epilog="exit codes: 0 deployable (passed, released, exempt, or flagged with a warning), 1 blocked or not "
        "scanned, 2 no decision within --timeout, or an error (a tag that no longer resolves is one)",
    )  # fmt: skip
    ci_gate.add_arguments(gate)
    _admin_options(gate)
    gate.set_defaults(func=cmd_gate)

    checks = sub.add_parser(
        "doctor", help="check a deployment (or the local stack) and print what fixes each gap",
        epilog="exit codes: 0 everything required is in place, 1 something required is missing, 2 usage error",
    )  # fmt: skip
    doctor.add_arguments(checks)
    checks.set_defaults(func=cmd_doctor)
    retained = sub.add_parser(
        "adopt-retained", help="after `sam delete`: import the retained audit table and queues into a new stack"
    )
    adopt.add_arguments(retained)
    retained.set_defaults(func=cmd_adopt)

    redrive = sub.add_parser("slack-redrive", help="send parked Slack messages again (after fixing the webhook)")
    redrive.add_argument("--limit", type=int, default=100)
    redrive.add_argument("--slack-secret", help="the stack's webhook secret if not ecr-warden/<env>/slack-webhook")
    _admin_options(redrive)
    redrive.set_defaults(func=cmd_slack_redrive)

    migrate = sub.add_parser(
        "migrate-audit", help="copy audit records of a version before 0.2 into the account/region-keyed table"
    )
    migrate.add_argument("--account", help="account the old deployment ran in (default: the caller's account)")
    migrate.add_argument("--dry-run", action="store_true", help="count what would be copied, write nothing")
    _admin_options(migrate)
    migrate.set_defaults(func=cmd_migrate_audit)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "template", "unset") is None:
            args.template = _default_template()
        code: int = args.func(args)
    except KeyboardInterrupt:  # Ctrl-C before a command installed its own handling (e.g. while importing)
        print("ecr-warden: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
