"""`ecr-warden local` takes a real Slack webhook from a file or the environment, never from the command line
(where every user of the machine can read it in the process list)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecr_warden_tools import cli

URL = "https://hooks.slack.com/services/T000/B000/secret-token-XYZ"


def test_the_webhook_url_is_not_a_command_line_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["local", "--slack-webhook-url", URL])
    err = capsys.readouterr().err
    assert "--slack-webhook-url-file" in err
    assert "secret-token-XYZ" not in err


def test_the_webhook_url_comes_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.SLACK_WEBHOOK_URL_VARIABLE, raising=False)
    path = tmp_path / "webhook"
    path.write_text(URL + "\n")
    args = cli.build_parser().parse_args(["local", "--slack-webhook-url-file", str(path)])
    assert cli.slack_webhook_url(args) == URL


def test_the_webhook_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.SLACK_WEBHOOK_URL_VARIABLE, URL)
    assert cli.SLACK_WEBHOOK_URL_VARIABLE == "ECR_WARDEN_SLACK_WEBHOOK_URL"
    assert cli.slack_webhook_url(cli.build_parser().parse_args(["local"])) == URL


def test_without_either_the_local_catcher_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.SLACK_WEBHOOK_URL_VARIABLE, raising=False)
    assert cli.slack_webhook_url(cli.build_parser().parse_args(["local"])) is None


def test_an_unreadable_or_empty_file_is_an_error_that_does_not_echo_its_content(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    for path in (tmp_path / "missing", empty):
        args = cli.build_parser().parse_args(["local", "--slack-webhook-url-file", str(path)])
        with pytest.raises(ValueError, match="slack-webhook-url-file"):
            cli.slack_webhook_url(args)


def test_the_help_names_the_file_and_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["local", "--help"])
    help_text = capsys.readouterr().out
    assert "--slack-webhook-url-file" in help_text
    assert "ECR_WARDEN_SLACK_WEBHOOK_URL" in help_text
