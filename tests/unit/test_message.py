from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from ecr_warden.contracts.decision import Action, DecisionDetail
from ecr_warden.domain.findings import Finding
from ecr_warden.domain.images import Scope
from ecr_warden.notify import message

DIGEST = "sha256:" + "c" * 64


def decision(**changes: Any) -> DecisionDetail:
    base: dict[str, Any] = {
        "schema_version": "1.0",
        "decision_id": "d-1",
        "time": datetime(2026, 11, 27, 12, tzinfo=UTC),
        "account": "123456789012",
        "region": "us-east-1",
        "environment": "prod",
        "mode": "enforce",
        "repository": "ses-base/api-server",
        "digest": DIGEST,
        "tags": ["v1.2.3"],
        "verdict": "BLOCK",
        "action": "quarantined",
        "status": "QUARANTINED",
        "rule": "default",
        "reasons": ["rule default: 1 finding(s) at or above CRITICAL: CVE-2024-6387"],
        "severity_counts": {"CRITICAL": 1, "HIGH": 2},
        "findings_total": 3,
        "quarantine_tag": "quarantined-cccc",
        "top_findings": [
            Finding(
                id="CVE-2024-6387",
                severity="CRITICAL",
                package="openssh-server",
                installed_version="1:8.9p1",
                fixed_version="1:8.9p2",
                cvss=9.8,
                exploit_available=True,
                url="https://nvd.nist.gov/vuln/detail/CVE-2024-6387",
            )
        ],
        "trigger": "Inspector2 Scan",
        "fingerprint": "f" * 32,
    }
    return DecisionDetail.model_validate(base | changes)


def _text(payload: dict[str, Any]) -> str:
    return json.dumps(payload)


def test_slack_message_has_what_a_person_needs() -> None:
    payload = message.slack_message(decision())
    text = _text(payload)
    assert payload["blocks"][0]["type"] == "header"
    assert "Quarantined: ses-base/api-server:v1.2.3" in payload["blocks"][0]["text"]["text"]
    for expected in (
        "123456789012",
        "us-east-1",
        "sha256:cccccccccccc",
        "CRITICAL 1",
        "HIGH 2",
        "CVE-2024-6387",
        "openssh-server",
        "1:8.9p2",
        "CVSS 9.8",
        "exploit available",
        "quarantined-cccc",
        "ecr-warden release --environment prod --region us-east-1 --repository ses-base/api-server",
        "ecr-warden exempt add --environment prod --region us-east-1 --cve CVE-2024-6387",
        "console.aws.amazon.com/ecr/repositories/private/123456789012/ses-base/api-server",
    ):
        assert expected in text, expected
    assert payload["text"].startswith("Quarantined: ses-base/api-server:v1.2.3")


def test_slack_limits_hold_for_huge_decisions() -> None:
    findings = [
        Finding(id=f"CVE-2026-{i:05d}", severity="CRITICAL", package="p" * 300, url="https://x/" + "y" * 300)
        for i in range(200)
    ]
    payload = message.slack_message(
        decision(top_findings=findings, findings_total=5000, reasons=["r" * 10_000], tags=["t" * 200])
    )
    assert len(payload["blocks"]) <= message.MAX_BLOCKS
    for block in payload["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= message.MAX_HEADER
        if block.get("text"):
            assert len(block["text"]["text"]) <= message.MAX_TEXT
    findings_block = next(b for b in payload["blocks"] if "CVE-2026-00000" in b.get("text", {}).get("text", ""))
    shown = findings_block["text"]["text"].count("CVE-2026-")
    more = re.search(r"and (\d+) more", findings_block["text"]["text"])
    assert more is not None
    assert shown + int(more.group(1)) == 5000


def test_audit_mode_says_what_it_would_have_done() -> None:
    payload = message.slack_message(decision(action="would_quarantine", status="AUDITED", mode="audit"))
    assert "Audit: would quarantine" in payload["blocks"][0]["text"]["text"]
    assert "audit mode" in _text(payload)


def test_sns_subject_is_short_ascii_one_line() -> None:
    subject = message.sns_subject(decision(tags=["ünïcode-" + "x" * 200]))
    assert len(subject) < 100
    assert subject.isascii()
    assert "\n" not in subject
    assert (
        message.sns_subject(decision()) == "[ecr-warden] Quarantined: ses-base/api-server:v1.2.3 (1 CRITICAL, 2 HIGH)"
    )


def test_sns_document_and_attributes() -> None:
    document = message.sns_document(decision())
    assert document["schema_version"] == "1.0"
    assert document["decision"]["action"] == "quarantined"
    assert document["highest_severity"] == "CRITICAL"
    attributes = message.sns_attributes(decision())
    assert {k: v["StringValue"] for k, v in attributes.items()} == {
        "severity": "CRITICAL",
        "action": "quarantined",
        "repository": "ses-base/api-server",
        "account": "123456789012",
        "region": "us-east-1",
        "environment": "prod",
    }


def test_commands_are_shell_quoted() -> None:
    commands = message.commands(decision(repository="a/b", top_findings=[Finding(id="GHSA-x;rm", severity="HIGH")]))
    assert "--cve 'GHSA-x;rm'" in commands["exempt"]
    assert commands["exempt"].startswith("ecr-warden exempt add --environment ")
    assert " --region " in commands["release"]


def test_commands_reach_the_deployment_and_name_a_members_registry() -> None:
    """Organization mode: the notifier's home is the central deployment; a member's image is named with
    --account/--registry-region, and --region is where the deployment (its admin function) is."""
    detail = decision(status="QUARANTINED", account="210987654321", region="ap-northeast-1")
    central = message.commands(detail, Scope("123456789012", "us-east-1"))["release"]
    assert "--region us-east-1 --account 210987654321 --registry-region ap-northeast-1 " in central
    own = message.commands(detail, Scope("210987654321", "ap-northeast-1"))["release"]
    assert "--account" not in own
    assert "--region ap-northeast-1 " in own
    document = message.sns_document(detail, None, Scope("123456789012", "us-east-1"))
    assert document["commands"]["release"] == central


def test_follow_up_lists_the_updates() -> None:
    updates = [decision(action=Action.UPDATED, reasons=[f"new finding CVE-{i}"]) for i in range(3)]
    payload = message.slack_message(decision(action=Action.UPDATED), updates)
    assert "(3 updates)" in payload["blocks"][0]["text"]["text"]
    assert "Updates in the last window (3)" in _text(payload)


def test_an_incomplete_release_says_which_tags_did_not_come_back_and_what_to_do() -> None:
    other = "sha256:" + "d" * 64
    detail = decision(action="release_incomplete", status="RELEASED", tags=["stable"], not_restored={"v1.2.3": other})
    text = json.dumps(message.slack_message(detail), ensure_ascii=False)
    assert "Released, tags not all restored: ses-base/api-server:stable" in text
    assert f"`v1.2.3` (now on `{other[:19]}…`)" in text
    assert "deploy it by digest, or push a new tag" in text
    assert message.sns_attributes(detail)["action"]["StringValue"] == "release_incomplete"


def test_a_reused_tag_names_both_images() -> None:
    other = "sha256:" + "e" * 64
    detail = decision(action="tag_reused", tags=["v1.2.3"], tag_now_on=other)
    text = json.dumps(message.slack_message(detail), ensure_ascii=False)
    assert "Tag of a quarantined image reused: ses-base/api-server:v1.2.3" in text
    assert f"now points at `{other[:19]}…`" in text
    assert DIGEST[:19] in text
    assert message.sns_document(detail)["decision"]["tag_now_on"] == other


def _mrkdwn_texts(payload: dict[str, Any]) -> list[str]:
    """Every piece of the message Slack parses as mrkdwn: the fallback text, section texts and fields, context."""
    texts = [payload["text"]]
    for block in payload["blocks"]:
        if block.get("text", {}).get("type") == "mrkdwn":
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", []) if f.get("type") == "mrkdwn"]
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def test_event_text_is_escaped_in_every_mrkdwn_text() -> None:
    hostile = "<!channel> <https://evil.example/login|click> & <@U123>"
    detail = decision(
        tags=[hostile],
        reasons=[hostile],
        rule=hostile,
        quarantine_tag=hostile,
        trigger=hostile,
        decision_id=hostile,
        severity_counts={"CRITICAL": 1, hostile: 2},
        top_findings=[
            Finding(
                id=hostile,
                severity="CRITICAL",
                package=hostile,
                installed_version=hostile,
                fixed_version=hostile,
                url="https://evil.example/advisory",
            )
        ],
    )
    updates = [decision(action=Action.UPDATED, reasons=[hostile])]
    for payload in (message.slack_message(detail), message.slack_message(detail, updates)):
        for text in _mrkdwn_texts(payload):
            assert "<!" not in text, text
            assert "<@" not in text, text
            assert "<https://evil" not in text, text
            assert "evil.example/advisory" not in text, text  # not a link target, and not shown as one
        assert "&lt;!channel&gt;" in json.dumps(payload)


def test_only_known_advisory_hosts_become_links() -> None:
    def line(url: str) -> str:
        payload = message.slack_message(decision(top_findings=[Finding(id="CVE-1", severity="HIGH", url=url)]))
        return next(t for t in _mrkdwn_texts(payload)[1:] if "CVE-1" in t)

    for good in (
        "https://nvd.nist.gov/vuln/detail/CVE-1",
        "https://github.com/advisories/GHSA-xxxx-yyyy-zzzz",
        "https://www.cve.org/CVERecord?id=CVE-1",
        "https://access.redhat.com/security/cve/CVE-1",
        "https://ubuntu.com/security/CVE-1",
        "https://security-tracker.debian.org/tracker/CVE-1",
        "https://alas.aws.amazon.com/AL2/ALAS-1.html",
        "https://osv.dev/vulnerability/CVE-1",
        "https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-1",
    ):
        assert f"<{good.replace('&', '&amp;')}|CVE-1>" in line(good), good
    for bad in (
        "http://nvd.nist.gov/vuln/detail/CVE-1",
        "https://nvd.nist.gov.evil.example/x",
        "https://evil.example@nvd.nist.gov/x",
        "https://github.com/evil/phish",
        "https://nvd.nist.gov/x|fake label",
        "https://nvd.nist.gov/x>y",
        "javascript:alert(1)",
    ):
        text = line(bad)
        assert "<" not in text.replace("&lt;", ""), (bad, text)
        assert "CVE-1" in text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("region", "evil.example/phish?x="),
        ("region", "us-east-1.evil.example"),
        ("region", "US-EAST-1"),
        ("account", "12345678901"),
        ("account", "123456789012/../x"),
        ("repository", "Repo/<!channel>"),
        ("repository", "a//b"),
        ("repository", "../etc"),
        ("digest", "sha256:abc def"),
        ("digest", "<!channel>"),
    ],
)
def test_decisions_with_forged_locations_are_invalid(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        decision(**{field: value})


def test_real_locations_are_valid() -> None:
    for region in ("us-east-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1", "cn-north-1", "il-central-1"):
        assert decision(region=region).region == region
    assert decision(repository="a.b_c-d/e-f/g").repository == "a.b_c-d/e-f/g"
    url = message.console_url(decision(region="eu-west-1"))
    assert url.startswith("https://eu-west-1.console.aws.amazon.com/ecr/")


def test_a_quarantine_message_says_what_it_does_not_stop() -> None:
    text = json.dumps(message.slack_message(decision()), ensure_ascii=False)
    assert "it can still be pulled by digest or by that tag" in text
    assert "block_method: archive" in text
