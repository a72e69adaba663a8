"""ecr-warden command-line tool: the local stack, sending sample events, the local scanner and the demo."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
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
    stack = LocalStack(
        args.template,
        port=args.port,
        region=args.region,
        slack_webhook_url=webhook,
        parameters=_parameters(args.parameter),
        echo=lambda line: print(line, flush=True),
    )
    try:
        stack.start()
    except ConfigurationError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot serve on 127.0.0.1:{args.port}: {exc.strerror}")
    print("stack outputs:")
    for name, value in sorted(stack.provisioned.outputs.items()):
        print(f"  {name} = {value}")
    if stack.catcher:
        print(f"slack webhook catcher: {stack.catcher.url}")
    print(
        f"ecr-warden local stack ready on {stack.endpoint_url} (region {stack.region}); Ctrl-C stops it",
        flush=True,
    )
    stopped = False

    def stop(*_: Any) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopped:
            signal.pause() if hasattr(signal, "pause") else None
    finally:
        stack.stop()
        print("local stack stopped", flush=True)
    return 0


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


def cmd_send(args: argparse.Namespace) -> int:
    """Validate event files and put them on the bus: the same check the functions' rules make."""
    import boto3

    from ecr_warden.contracts.parsing import parse_aws_event
    from ecr_warden.errors import PermanentError

    entries: list[Any] = []
    for path in args.files:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            return _fail(f"{path}: {exc.strerror}")
        except ValueError as exc:
            return _fail(f"{path}: not JSON: {exc}")
        try:
            parse_aws_event(raw)
        except PermanentError as exc:
            return _fail(f"{path}: {exc}")
        entries.append(
            {
                "Source": raw["source"],
                "DetailType": raw["detail-type"],
                "Detail": json.dumps(raw["detail"]),
                "Resources": raw.get("resources", []),
                "EventBusName": args.bus,
            }
        )
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("events", endpoint_url=args.endpoint_url, region_name=args.region)
    for start in range(0, len(entries), 10):
        try:
            response = client.put_events(Entries=entries[start : start + 10])
        except (BotoCoreError, ClientError) as exc:
            return _fail(f"put-events to {args.endpoint_url}: {exc}")
        if response.get("FailedEntryCount"):
            return _fail(f"put-events rejected {response['FailedEntryCount']} event(s): {response['Entries']}")
    print(f"sent {len(entries)} event(s) to bus {args.bus} at {args.endpoint_url}")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    body = {
        "repository": args.repository,
        "tag": args.tag,
        "digest": args.digest,
        "fixture": args.fixture,
        "scanner": args.scanner,
        "findings_lag": args.findings_lag,
    }
    try:
        result = _post(args.endpoint_url, "/_ecr_warden/scan", body)
    except (RuntimeError, OSError) as exc:
        return _fail(f"scan failed: {exc}")
    print(json.dumps(result, indent=2))
    return 0


def _deployment(args: argparse.Namespace) -> Any:
    import os

    from ecr_warden_tools.admin import Deployment

    region = _region(args)
    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    os.environ["AWS_DEFAULT_REGION"] = region
    return Deployment(args.environment, region)


def cmd_release(args: argparse.Namespace) -> int:
    from ecr_warden.errors import WardenError
    from ecr_warden_tools.admin import release

    try:
        outcome = release(_deployment(args), args.repository, args.digest, args.reason, args.by)
    except WardenError as exc:
        return _fail(str(exc))
    print(f"{outcome.action}: {args.repository}@{args.digest} ({outcome.reason})")
    if outcome.announced is not None:
        print(f"restored tags: {', '.join(outcome.announced.tags) or '(none)'}")
    if outcome.action != "release_incomplete":
        return 0
    print(
        "not every recorded tag could be restored: those tags now point at other images and were left alone.\n"
        f"to deploy this image, use its digest ({args.repository}@{args.digest}) or push a new tag onto it; "
        "ecr-warden no longer removes tags from it.",
        file=sys.stderr,
    )
    return EXIT_INCOMPLETE


def cmd_exempt(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ecr_warden.errors import WardenError
    from ecr_warden.policy.model import Exemption
    from ecr_warden_tools.admin import exempt, parse_expiry

    try:
        exemption = Exemption(
            cve=args.cve,
            repositories=[args.repository],
            digest=args.digest,
            tag=args.tag,
            expires=parse_expiry(args.expires),
            reason=args.reason,
            approver=args.approver,
        )
        version = exempt(_deployment(args), exemption)
    except (ValueError, ValidationError, WardenError) as exc:
        return _fail(str(exc).splitlines()[0])
    print(
        f"exempted {args.cve} for {args.repository} until {exemption.expires:%Y-%m-%d} "
        f"(policy version {version}); the next scan result applies it, or run `ecr-warden release` now"
    )
    return 0


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

    parser = argparse.ArgumentParser(prog="ecr-warden", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ecr-warden {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="run the embedded local AWS stack in the foreground")
    local.add_argument("--port", type=int, default=4566)
    local.add_argument("--region", default="us-east-1")
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
    send.add_argument("--bus", default="default")
    send.set_defaults(func=cmd_send)

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
    scan.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT)
    scan.set_defaults(func=cmd_scan)

    _admin_commands(sub)

    demo = sub.add_parser("demo", help="run the core loop on a fresh embedded local stack and show what happens")
    demo.add_argument("--port", type=int, default=0, help="0 picks a free port")
    demo.add_argument("--mode", choices=["enforce", "audit"], default="enforce")
    demo.add_argument("--template", type=Path, default=None)
    demo.set_defaults(func=cmd_demo)
    return parser


def _admin_commands(sub: Any) -> None:
    release = sub.add_parser("release", help="restore a blocked image's recorded tags (audited)")
    release.add_argument("--repository", required=True)
    release.add_argument("--digest", required=True)
    release.add_argument("--reason", required=True)
    release.add_argument("--by", default=os.environ.get("USER", "admin"), help="who releases (audit trail)")
    _admin_options(release)
    release.set_defaults(func=cmd_release)

    exempt = sub.add_parser("exempt", help="add a CVE exemption with a mandatory expiry to the deployed policy")
    exempt.add_argument("--cve", required=True)
    exempt.add_argument("--repository", required=True, help="repository name or fnmatch pattern")
    exempt.add_argument("--digest")
    exempt.add_argument("--tag", help="only together with --digest: anyone who can push picks tags")
    exempt.add_argument("--expires", required=True, help="ISO date or time, e.g. 2026-12-31")
    exempt.add_argument("--reason", required=True)
    exempt.add_argument("--approver", required=True)
    _admin_options(exempt)
    exempt.set_defaults(func=cmd_exempt)

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
    args = build_parser().parse_args(argv)
    if getattr(args, "template", "unset") is None:
        args.template = _default_template()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
