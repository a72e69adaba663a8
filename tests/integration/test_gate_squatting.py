"""Quarantine-tag squatting against moto's ECR and DynamoDB: anyone who can push may put
`quarantined-<first 12 hex of a victim's digest>` on another image first (IMMUTABLE repository)."""

from __future__ import annotations

from ecr_warden.domain.records import ImageStatus
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env
from tests.integration.test_scan_gate import CRITICAL


def test_a_squatted_quarantine_tag_does_not_stop_the_quarantine(aws: Env) -> None:
    aws.create_repository(immutable=True)
    victim = aws.push("v1", "bad")
    squatter = aws.push("quarantined-" + victim[7:19], "squatter")
    aws.enhanced.findings[(REPOSITORY, victim)] = list(CRITICAL)
    gate = aws.gate()

    outcome = gate.handle(events.inspector_scan(victim, ["v1"], {"CRITICAL": 1, "TOTAL": 2}))

    assert outcome.action == "quarantined"
    record = aws.record(victim)
    assert record is not None
    assert record.status is ImageStatus.QUARANTINED
    assert record.quarantine_tag is not None
    assert record.quarantine_tag.startswith("quarantined-" + victim[7:19] + "-")
    assert aws.tags(victim) == [record.quarantine_tag]  # not deployable any more, and still there
    assert aws.tags(squatter) == ["quarantined-" + victim[7:19]]  # the squatter's image is left alone
    assert [d["action"] for d in aws.decisions()] == ["quarantined"]
    # ecr-warden's own push of the fallback tag is recognised from the record, and changes nothing
    assert gate.handle(events.push(victim, record.quarantine_tag)).reason.startswith("own tag")
    assert aws.tags(victim) == [record.quarantine_tag]
