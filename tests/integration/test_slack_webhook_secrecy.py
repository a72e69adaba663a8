"""The webhook URL is a secret: no log record, at any level, ever carries it or its token path, whatever Slack
answers and whatever the URL in the secret looks like."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from ecr_warden.adapters.slack import SlackWebhooks
from ecr_warden.errors import SlackConfigurationError
from ecr_warden.notify import service
from tests.integration.conftest import Env
from tests.integration.slack_server import Answer, scripted_slack
from tests.integration.test_notifier import _queue_messages, notifier
from tests.unit.test_message import decision

TOKEN = "secret-token-XYZ"


@pytest.fixture(autouse=True)
def _everything_logged(caplog: pytest.LogCaptureFixture) -> None:
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    service._reported_routes.clear()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="slack_sdk")
    caplog.set_level(logging.DEBUG, logger="ecr_warden.slack_sdk")


def _logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    records = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    return records + out + err


def _assert_secret_kept(url: str, logged: str, aws: Env) -> None:
    assert TOKEN not in logged
    assert "T000/B000" not in logged
    assert url not in logged
    for parked in _queue_messages(aws, "SlackDeadLetterQueueUrl"):
        assert TOKEN not in json.dumps(parked)


@pytest.mark.parametrize(
    "answers",
    [
        [],  # 200
        [Answer(404, "no_service")],
        [Answer(403, "invalid_token")],
        [Answer(400, "invalid_blocks")],
        [Answer(429, "rate_limited", retry_after=0)],
        [Answer(503, "unavailable")] * 4,
    ],
    ids=["ok", "404", "403", "400", "429", "503"],
)
def test_no_log_record_carries_the_webhook(
    aws: Env, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], answers: list[Answer]
) -> None:
    with scripted_slack(*answers) as slack:
        notifier(aws, slack).on_decision(decision())
        url = slack.url
    assert caplog.records  # something was logged at DEBUG, so the check means something
    _assert_secret_kept(url, _logged(caplog, capfd), aws)


@pytest.mark.parametrize(
    "broken",
    [
        "{url} trailing",
        "{url}\n",
        "{url}\r\nX-Injected: 1",
        "{url}\x00",
        " {url}",
        "{url}/<!channel>",
    ],
    ids=["space", "newline", "crlf", "nul", "leading-space", "angle"],
)
def test_a_malformed_webhook_url_is_a_configuration_error_that_never_echoes_it(
    aws: Env, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str], broken: str
) -> None:
    with scripted_slack() as slack:
        n = notifier(aws, slack)
        url = broken.format(url=slack.url)
        _set_webhook(aws, url)
        n.on_decision(decision())
        assert slack.received == []
    [parked] = _queue_messages(aws, "SlackDeadLetterQueueUrl")
    assert parked["error_type"] == "SlackConfigurationError"
    assert "malformed" in parked["error"]
    _assert_secret_kept(url, _logged(caplog, capfd), aws)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.slack.com/services/T000/B000/secret-token-XYZ",
        "https://hooks.slack.com.evil.example/services/T000/B000/secret-token-XYZ",
        "https://evil.example/services/T000/B000/secret-token-XYZ",
        "https://user@hooks.slack.com/services/T000/B000/secret-token-XYZ",
        "ftp://127.0.0.1/services/T000/B000/secret-token-XYZ",
    ],
)
def test_only_slack_or_loopback_hosts_are_accepted(aws: Env, url: str) -> None:
    _set_webhook(aws, url)
    with pytest.raises(SlackConfigurationError) as raised:
        SlackWebhooks(aws.outputs["SlackWebhookSecretArn"]).url("default", None)
    assert "malformed" in raised.value.reason
    assert TOKEN not in str(raised.value)


def test_slack_and_loopback_urls_are_accepted(aws: Env) -> None:
    for url in (
        "https://hooks.slack.com/services/T000/B000/secret-token-XYZ",
        "http://127.0.0.1:8080/services/T000/B000/secret-token-XYZ",
        "http://localhost:8080/services/T0LOCAL/B0LOCAL/localcatcher",
    ):
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()
        _set_webhook(aws, url)
        assert SlackWebhooks(aws.outputs["SlackWebhookSecretArn"]).url("default", None) == url
    hooks = SlackWebhooks(aws.outputs["SlackWebhookSecretArn"], allowed_hosts=frozenset({"hooks.example.org"}))
    parameters.clear_caches()
    _set_webhook(aws, "https://hooks.example.org/services/T000/B000/secret-token-XYZ")
    assert hooks.url("default", None).startswith("https://hooks.example.org/")


def _set_webhook(aws: Env, url: Any) -> None:
    import boto3
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=aws.outputs["SlackWebhookSecretArn"], SecretString=json.dumps({"url": url})
    )
