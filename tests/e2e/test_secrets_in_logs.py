"""The Slack webhook URL is a secret (issue 9): every log line of the whole demo, and of the notifier's failure
paths (Slack answering 4xx and 5xx, a webhook that hangs, a malformed URL with spaces or control characters), is
captured (every logging record at DEBUG through the root logger's handlers, plus the processes' stdout and
stderr) and none carries the token.

The demo runs on the embedded local stack with a webhook URL whose token is known; the failure paths run the
notifier's real entry point on moto with a real HTTP Slack on loopback (tests/slack_stub.py).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ecr_warden import runtime
from ecr_warden.notify import entry as notify_entry
from ecr_warden.notify import service
from ecr_warden.observability import logger as warden_logger
from tests.conftest import TEMPLATE, load_event
from tests.moto_stack import MotoStack, moto_stack
from tests.slack_stub import STALL, TOKEN, Failure, SlackStub, slack_stub

PATH_SECRET = f"T000/B000/{TOKEN}"


def _everything(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    records = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records
    )
    return "\n".join((records, out, err))


def assert_no_secret(text: str, url: str, what: str) -> None:
    """No trace of the token: not whole, not its path, not URL-quoted, not the URL itself."""
    for secret in (TOKEN, PATH_SECRET, url, url.replace("/", "\\/"), TOKEN.replace("-", "%2D")):
        assert secret not in text, f"{what} carries the webhook secret ({secret[:12]}...)"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every record any logger emits at DEBUG reaches the capture (the SDK loggers stay as the code sets them)."""
    caplog.set_level(logging.DEBUG)
    level = warden_logger.log_level
    warden_logger.setLevel(logging.DEBUG)
    yield
    warden_logger.setLevel(level)


# -- the whole demo ----------------------------------------------------------------------------------------------


def test_the_demo_logs_no_secret(
    everything_logged: None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ecr_warden_tools import demo
    from ecr_warden_tools.demo import run_demo
    from ecr_warden_tools.local.catcher import SlackCatcher
    from ecr_warden_tools.local.stack import LocalStack

    def url(self: SlackCatcher) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/services/{PATH_SECRET}"

    init = LocalStack.__init__

    def debug_stack(self: LocalStack, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.parameter_overrides = {**self.parameter_overrides, "LogLevel": "DEBUG"}  # every function line
        self.echo = print  # and the stack's own lines

    # the same steps, with a shorter findings-lag window (tests/e2e/test_demo.py runs the demo's own timings)
    monkeypatch.setattr(demo, "DEMO_FINDINGS_LAG", {"window_seconds": 10, "first_recheck_seconds": 5,
                                                    "on_timeout": "block"})  # fmt: skip
    monkeypatch.setattr(SlackCatcher, "url", property(url))
    monkeypatch.setattr(LocalStack, "__init__", debug_stack)
    said: list[str] = []
    result = run_demo(TEMPLATE, say=said.append)

    assert result["slack_messages"], "the demo sent no Slack message: the check would mean nothing"
    assert_demo_told_the_truth(result, "\n".join(said))
    assert all(m["path"].endswith(TOKEN) for m in result["slack_messages"]), "the demo did not use the webhook"
    logged = _everything(caplog, capfd)
    assert re.search(r'"message": ?"decision"', logged), "the functions' log lines were not captured"
    assert len(caplog.records) > 100, "the stack's log records were not captured"
    assert_no_secret(logged + "\n".join(said), f"/services/{PATH_SECRET}", "the demo's output")


def assert_demo_told_the_truth(result: dict[str, Any], text: str) -> None:
    """What tests/e2e/test_demo.py checks of the same run, so one demo run can serve both (the demo is the
    slowest test: a second run costs about 25 s of CPU)."""
    assert result["quarantined"]["status"] == "QUARANTINED"
    assert result["quarantined"]["original_tags"] == ["v1.2.3", "v1.2.3-hotfix"]
    assert result["passed"]["status"] == "PASSED"
    assert result["lagging"]["status"] == "QUARANTINED"
    assert [h["action"] for h in result["lagging"]["history"]] == ["findings_lagging", "quarantined"]
    headers = [m["body"]["blocks"][0]["text"]["text"] for m in result["slack_messages"]]
    assert any("Tag of a quarantined image reused: ses-base/api-server:v1.2.3" in h for h in headers)
    assert any("Quarantined: ses-base/api-server:v1.4.0" in h for h in headers)
    assert "v1.2.3 pullable: False" in text
    assert "still pullable by digest: True; by its quarantine tag quarantined-" in text
    assert "right after the scan: tags ['v1.4.0']; status PENDING" in text
    assert "Traceback" not in text


# -- the failure paths -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[MotoStack]:
    with moto_stack() as running:
        yield running


@pytest.fixture
def slack(stack: MotoStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStub]:
    from aws_lambda_powertools.utilities import parameters
    from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

    from ecr_warden.adapters import aws as aws_clients

    monkeypatch.setattr(service, "SLACK_INTERVAL_SECONDS", 0.0)
    monkeypatch.setattr(BackoffRetryIntervalCalculator, "calculate_sleep_duration", lambda self, count: 0.0)
    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    service._reported_routes.clear()
    with slack_stub(stall_seconds=0.6) as stub:
        yield stub
    aws_clients.reset_clients()
    runtime.forget_policy_sources()
    parameters.clear_caches()


class Context:
    function_name = "ecr-warden-dev-notifier"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ecr-warden-dev-notifier"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def notify_once(stack: MotoStack, url: str) -> tuple[Any, str]:
    """Deliver a fresh decision with `url` as the webhook; (the result or the error, everything sent to SQS)."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    service._reported_routes.clear()
    stack.set_webhook(url)
    raw = load_event("ecr-warden-decision-quarantined.json")
    raw["detail"].update({"decision_id": str(uuid.uuid4()), "fingerprint": uuid.uuid4().hex})

    def build(settings: Any) -> Any:
        notifier = notify_entry.build_notifier(settings)
        notifier.slack.timeout_seconds = 0.3  # type: ignore[attr-defined]
        return notifier

    try:
        result: Any = notify_entry.process(raw, Context(), stack.notifier_settings(), build)
    except Exception as error:  # the error Lambda would log is checked too
        result = f"{type(error).__name__}: {error}"
    parked = stack.queue_messages("SlackDeadLetterQueueUrl") + stack.queue_messages("NotifierDeadLetterQueueUrl")
    return result, json.dumps(parked)


ANSWERS = {
    "400": [Failure(400, "invalid_blocks")],
    "403": [Failure(403, "invalid_token")],
    "404": [Failure(404, "no_service")],
    "410": [Failure(410, "channel_is_archived")],
    "429": [Failure(429, "rate_limited", retry_after=0)] * 4,
    "500": [Failure(500, "internal_error")] * 4,
    "503": [Failure(503, "unavailable")] * 4,
    "stall": [STALL] * 4,
}


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_slack_failures_log_no_secret(
    stack: MotoStack,
    slack: SlackStub,
    everything_logged: None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    answer: str,
) -> None:
    slack.fail("000", *ANSWERS[answer])
    url = f"{slack.base_url}/services/{PATH_SECRET}"
    result, parked = notify_once(stack, url)
    assert slack.requests, "Slack was never called: the check would mean nothing"
    logged = _everything(caplog, capfd)
    assert caplog.records
    assert_no_secret(f"{logged}\n{result}\n{parked}", url, f"Slack answering {answer}")


MALFORMED = {
    "space": "{url} trailing",
    "newline": "{url}\n",
    "crlf-header": "{url}\r\nX-Injected: {token}",
    "nul": "{url}\x00",
    "tab": "{url}\t",
    "leading-space": " {url}",
    "query": "{url}?token={token}",
    "fragment": "{url}#{token}",
    "userinfo": "http://{token}@127.0.0.1:1/services/T000/B000/x",
    "unicode": "{url}\u202e",
    "angle": "<{url}|click>",
    "not-a-url": "{token}",
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_a_malformed_webhook_url_logs_no_secret(
    stack: MotoStack,
    slack: SlackStub,
    everything_logged: None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    shape: str,
) -> None:
    good = f"{slack.base_url}/services/{PATH_SECRET}"
    url = MALFORMED[shape].format(url=good, token=TOKEN)
    result, parked = notify_once(stack, url)
    assert slack.posted == [], "a malformed URL was used"
    assert "SlackConfigurationError" in parked, "a malformed URL was not parked as a configuration error"
    assert_no_secret(f"{_everything(caplog, capfd)}\n{result}\n{parked}", url, f"a malformed URL ({shape})")


# -- the test of the tests ---------------------------------------------------------------------------------------


def test_the_check_catches_an_adapter_that_logs_the_url(
    stack: MotoStack,
    slack: SlackStub,
    everything_logged: None,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Break "the URL never appears in logs": the Slack adapter logs where it posts."""
    from ecr_warden.adapters.slack import SlackWebhooks

    post = SlackWebhooks.post

    def chatty(self: SlackWebhooks, route: str, url: str, message: dict[str, Any]) -> None:
        logging.getLogger("ecr_warden.debugging").debug("posting to %s", url)
        post(self, route, url, message)

    monkeypatch.setattr(SlackWebhooks, "post", chatty)
    url = f"{slack.base_url}/services/{PATH_SECRET}"
    result, parked = notify_once(stack, url)
    with pytest.raises(AssertionError, match="carries the webhook secret"):
        assert_no_secret(f"{_everything(caplog, capfd)}\n{result}\n{parked}", url, "a chatty adapter")
