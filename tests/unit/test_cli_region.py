"""The CLI follows the standard AWS configuration chain for its region, never a hard-coded default over it."""

from __future__ import annotations

import pytest

from ecr_warden_tools import cli


@pytest.fixture(autouse=True)
def _restore_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """_deployment exports the region for boto3: put the test session's back afterwards."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _deployment(argv: list[str]) -> object:
    args = cli.build_parser().parse_args(argv)
    return cli._deployment(args)


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_the_region_comes_from_the_environment_when_not_given(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv(variable, "ap-northeast-1")
    deployment = _deployment(["slack-redrive"])
    assert deployment.region == "ap-northeast-1"  # type: ignore[attr-defined]


def test_an_explicit_region_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ap-northeast-1")
    assert _deployment(["slack-redrive", "--region", "eu-west-1"]).region == "eu-west-1"  # type: ignore[attr-defined]


def test_no_region_anywhere_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(SystemExit, match="no region: pass --region, or set AWS_REGION"):
        _deployment(["slack-redrive"])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("ecr-warden 0.")
