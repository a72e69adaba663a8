"""ecr-warden command-line tool: the local stack, sending sample events, the local scanner and the demo."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"


def _default_template() -> Path:
    here = Path.cwd() / "template.yaml"
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[3] / "template.yaml"


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


def cmd_local(args: argparse.Namespace) -> int:
    from ecr_warden.errors import ConfigurationError
    from ecr_warden.local.stack import LocalStack

    stack = LocalStack(
        args.template,
        port=args.port,
        region=args.region,
        slack_webhook_url=args.slack_webhook_url,
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
    }
    try:
        result = _post(args.endpoint_url, "/_ecr_warden/scan", body)
    except (RuntimeError, OSError) as exc:
        return _fail(f"scan failed: {exc}")
    print(json.dumps(result, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ecr_warden.demo import run_demo

    run_demo(args.template, port=args.port, mode=args.mode)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecr-warden", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="run the embedded local AWS stack in the foreground")
    local.add_argument("--port", type=int, default=4566)
    local.add_argument("--region", default="us-east-1")
    local.add_argument("--slack-webhook-url", help="real webhook to use instead of the local catcher")
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
    scan.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT)
    scan.set_defaults(func=cmd_scan)

    demo = sub.add_parser("demo", help="run the core loop on a fresh embedded local stack and show what happens")
    demo.add_argument("--port", type=int, default=0, help="0 picks a free port")
    demo.add_argument("--mode", choices=["enforce", "audit"], default="enforce")
    demo.add_argument("--template", type=Path, default=None)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "template", "unset") is None:
        args.template = _default_template()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
