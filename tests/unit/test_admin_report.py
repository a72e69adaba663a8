"""`report` on in-memory fakes: what each managed repository's section says (quarantined and exempt images, counts,
expiring exemptions, storage cost, lifecycle preview, drift), pagination across invocations, bad input (a structured
error naming the field, nothing changed), read-only (its admin-log entry is its only write), and the renderings."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest

from ecr_warden.actions.report import Report, decode_token, encode_token
from ecr_warden.admin.ports import LifecyclePreview
from ecr_warden.domain.records import HistoryEntry, ImageRecord, ImageStatus
from ecr_warden_tools.report_render import FORMATS, merge, render
from tests.events import inspector_scan
from tests.fakes import NOW, REPOSITORY
from tests.fakes_exemptions import Admin
from tests.unit.test_admin import CRITICAL_COUNTS, critical_image, exempt_add, quarantined, refused


@pytest.fixture
def admin() -> Admin:
    return Admin()


def report(admin: Admin, **fields: Any) -> dict[str, Any]:
    answer = admin.invoke({"action": "report", "by": "lead", **fields})
    assert answer["ok"] is True, answer
    result: dict[str, Any] = answer["result"]
    json.dumps(result)  # JSON all the way down
    return result


def exempt_record(admin: Admin, seed: str = "exempted") -> str:
    digest = admin.fakes.registry.push("v2", seed)
    at = NOW - timedelta(days=3)
    entry = HistoryEntry(at=at, action="exempted", status="EXEMPT", reason="exempted: CVE-2024-6387", trigger="scan")
    admin.fakes.store.put(
        ImageRecord(repository=REPOSITORY, digest=digest, status=ImageStatus.EXEMPT, updated_at=at,
                    original_tags=["v2"], history=[entry])
    )  # fmt: skip
    return digest


def test_report_lists_quarantined_and_exempt_images_counts_cost_and_expiring_exemptions(admin: Admin) -> None:
    blocked = quarantined(admin)
    exempt = exempt_record(admin)
    admin.fakes.registry.push("v3", "never-scanned")
    assert admin.invoke(exempt_add(expires="2026-11-10"))["ok"] is True  # within 14 days of NOW
    assert admin.invoke(exempt_add(cve="CVE-2024-0001", expires="2026-12-20"))["ok"] is True  # not within 14 days
    admin.inventory.previews[REPOSITORY] = LifecyclePreview(False, "preview unavailable (timed out)", 0, ())
    before = admin.writes

    result = report(admin, price_per_gb_month=0.5)

    assert admin.writes == before + 1, "read-only: its admin-log entry is its only write"
    assert result["next_token"] is None
    assert (result["account"], result["region"], result["generated_at"]) == (
        "123456789012",
        "us-east-1",
        "2026-11-01T12:00:00Z",
    )
    (section,) = result["repositories"]
    assert section["repository"] == REPOSITORY
    assert section["images"] == {"total": 3, "by_status": {"EXEMPT": 1, "QUARANTINED": 1}, "unrecorded": 1}
    (row,) = section["blocked"]
    assert (row["digest"], row["tags"], row["status"]) == (blocked, ["v1"], "QUARANTINED")
    assert row["since"] == "2026-11-01T12:00:00Z"
    assert row["reason"]
    assert section["exempt"] == [{"digest": exempt, "status": "EXEMPT", "tags": ["v2"], "since": "2026-10-29T12:00:00Z",
                                  "reason": "exempted: CVE-2024-6387"}]  # fmt: skip
    assert [e["cve"] for e in section["expiring_exemptions"]] == ["CVE-2024-6387"]
    images = admin.fakes.registry.repositories[REPOSITORY].images.values()
    size = sum(len(image.body) * 1_000_000 for image in images)
    assert section["storage"]["bytes"] == size
    assert section["storage"]["monthly_cost_usd"] == round(size / 1024**3 * 0.5, 2)
    assert section["lifecycle"] == {"available": False, "message": "preview unavailable (timed out)", "expiring": 0,
                                    "digests": []}  # fmt: skip
    assert result["summary"]["blocked"] == 1
    assert result["summary"]["previews_unavailable"] == 1
    assert "0.5 USD per GB-month" in result["pricing"]
    assert "us-east-1" in result["pricing"]
    log = admin.exemptions.log[f"req-{admin.invocations}"]
    assert (log["action"], log["result"]) == ("report", {"repositories": 1, "more": False})


def test_report_names_settings_drift_without_changing_anything(admin: Admin) -> None:
    admin.fakes.registry.create_repository()
    admin.world.registry.create(REPOSITORY)
    before = admin.writes
    section = report(admin, repository=REPOSITORY)["repositories"][0]
    assert section["profile"] is not None
    assert set(section["drift"]) == {"changes", "reports"}
    assert admin.writes == before + 1, "only its admin-log entry: no settings write, claim or record"


def test_report_pages_through_a_large_registry_across_invocations(admin: Admin) -> None:
    names = [f"team/app-{i:02d}" for i in range(7)]
    for name in names:
        admin.fakes.registry.create_repository(name)
        admin.fakes.registry.push("v1", name, repository=name)
    admin.inventory.page_size = 3  # DescribeRepositories pages; the report's limit cuts across them
    seen, token, invocations = [], None, 0
    while True:
        result = report(admin, limit=2, **({"next_token": token} if token else {}))
        invocations += 1
        assert 1 <= len(result["repositories"]) <= 2
        seen += [s["repository"] for s in result["repositories"]]
        token = result["next_token"]
        if token is None:
            break
        decode_token(token)
    assert seen == names, "each repository once, in order"
    assert invocations == 4
    assert admin.inventory.calls["images"] == 7


def test_report_stops_at_its_time_budget_with_at_least_one_repository(
    admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        admin.fakes.registry.create_repository(f"team/app-{i}")
    monkeypatch.setattr(Report, "budget", -1.0)
    result = report(admin)
    assert [s["repository"] for s in result["repositories"]] == ["team/app-0"]
    assert decode_token(result["next_token"]) == (None, 1)


def test_report_skips_repositories_outside_the_guarded_ones(admin: Admin) -> None:
    admin.fakes.registry.create_repository("team/app")
    admin.fakes.registry.create_repository("other/app")
    admin.governed = "team/*"
    assert [s["repository"] for s in report(admin)["repositories"]] == ["team/app"]


@pytest.mark.parametrize(
    ("fields", "field", "kind"),
    [
        ({"price_per_gb_month": -0.1}, "price_per_gb_month", "invalid_request"),
        ({"price_per_gb_month": "0.10"}, "price_per_gb_month", "invalid_request"),
        ({"price_per_gb_month": True}, "price_per_gb_month", "invalid_request"),
        ({"next_token": "garbage"}, "next_token", "invalid_request"),
        ({"next_token": encode_token(None, 1)[:-3]}, "next_token", "invalid_request"),
        ({"next_token": encode_token("not-an-ecr-token", 0)}, "next_token", "rejected"),  # ECR refuses it
        ({"next_token": ""}, "next_token", "invalid_request"),
        ({"limit": 0}, "limit", "invalid_request"),
        ({"limit": 5000}, "limit", "invalid_request"),
        ({"limit": "5"}, "limit", "invalid_request"),
        ({"format": "markdown"}, "format", "invalid_request"),  # rendering is the CLI's, never the function's
        ({"repository": "Not A Repo"}, "repository", "invalid_request"),
        ({"repository": "team/unknown-to-policy"}, "repository", "rejected"),
        ({"repository": REPOSITORY, "next_token": encode_token(None, 0)}, "next_token", "rejected"),
    ],
)
def test_report_refusals_change_nothing(admin: Admin, fields: dict[str, Any], field: str, kind: str) -> None:
    admin.fakes.registry.create_repository()
    admin.governed = "ses-base/*"
    refused(admin, {"action": "report", "by": "lead", **fields}, field, kind)


def test_renderings_carry_every_section_and_reject_an_unknown_format(admin: Admin) -> None:
    blocked = quarantined(admin)
    admin.world.registry.create(REPOSITORY)
    assert admin.invoke(exempt_add(expires="2026-11-10"))["ok"] is True
    data = merge([report(admin)])

    markdown = render(data, "markdown")
    for heading in ("# ECR security report", "## Summary", "## Settings drift", "## Quarantined images",
                    "## Exempt images", "## Exemptions expiring within 14 days", "## Storage and estimated cost",
                    "## Lifecycle preview"):  # fmt: skip
        assert f"\n{heading}\n" in f"\n{markdown}", heading
    assert f"`{blocked}`" in markdown
    assert "Estimated storage cost: $" in markdown
    assert "per GB-month" in markdown
    assert "123456789012 / us-east-1" in markdown

    rows = list(csv.DictReader(io.StringIO(render(data, "csv"))))
    assert rows[0]["repository"] == REPOSITORY
    assert rows[0]["blocked_digests"] == blocked
    assert json.loads(render(data, "json"))["summary"]["blocked"] == 1

    table = render(data, "table").splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("repository  "))
    assert table[header + 1].startswith("-" * len(REPOSITORY))
    assert table[header + 2].startswith(REPOSITORY)
    assert set(FORMATS) == {"table", "markdown", "csv", "json"}
    with pytest.raises(ValueError, match="unknown format"):
        render(data, "html")


def test_csv_cells_never_become_formulas() -> None:
    section = {
        "repository": "r", "rule": None, "profile": None, "images": {"total": 1, "by_status": {}, "unrecorded": 0},
        "blocked": [], "exempt": [], "drift": None, "expiring_exemptions": [],
        "storage": {"bytes": 0, "gb": 0.0, "monthly_cost_usd": 0.0},
        "lifecycle": {"available": False, "message": "=HYPERLINK(\"x\")", "expiring": 0, "digests": []},
    }  # fmt: skip
    data = {"generated_at": "t", "account": "a", "region": "r", "price_per_gb_month": 0.1, "pricing": "p",
            "expiring_within_days": 14, "repositories": [section], "next_token": None}  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(render(merge([data]), "csv"))))
    assert rows[0]["lifecycle"].startswith("'=")


def test_an_image_passing_only_by_a_stored_exemption_is_listed_as_exempt(admin: Admin) -> None:
    admin.scans.type = "ENHANCED"
    digest = critical_image(admin, "v1")
    assert admin.invoke(exempt_add(expires="2026-11-30"))["ok"] is True
    admin.gate().handle(inspector_scan(digest, ["v1"], CRITICAL_COUNTS))
    assert admin.fakes.store.require(digest).status.value == "PASSED"
    clean = admin.fakes.registry.push("v2", "clean")
    admin.gate().handle(inspector_scan(clean, ["v2"], {"TOTAL": 0}))
    (section,) = report(admin)["repositories"]
    assert [row["digest"] for row in section["exempt"]] == [digest]
    assert section["exempt"][0]["reason"].startswith("exempted: CVE-2024-6387")
    assert section["blocked"] == []
