"""A decision's AWS calls do not grow with the repository: the index of an unmapped platform image is looked
for in one page of tagged images (ECR's largest) and one BatchGetImage, however many images there are."""

from __future__ import annotations

from ecr_warden_tools.local.images import OCI_INDEX, OCI_MANIFEST, image_index, image_manifest
from tests.integration import events
from tests.integration.conftest import REPOSITORY, Env
from tests.integration.test_scan_gate import CRITICAL

MAX_CALLS = 11


def _fill(aws: Env, count: int) -> None:
    for i in range(count):
        aws.push(f"filler-{i}", f"filler-{i}")


def test_an_unmapped_child_in_a_large_repository_costs_a_bounded_number_of_calls(aws: Env) -> None:
    aws.create_repository()
    _fill(aws, 1_200)  # more tagged images than one page holds
    child = aws.push(None, "amd64", media_type=OCI_MANIFEST, manifest=image_manifest("amd64", OCI_MANIFEST))
    index = aws.push("v5", "index", media_type=OCI_INDEX, manifest=image_index({"linux/amd64": child}))
    aws.enhanced.findings[(REPOSITORY, child)] = list(CRITICAL)
    aws.counter.calls.clear()
    aws.enhanced.calls = 0

    # the index's push event was not handled yet: the scan of its platform image arrives first
    outcome = aws.gate().handle(events.inspector_scan(child, [], {"CRITICAL": 1, "TOTAL": 2}))
    calls, total = dict(aws.counter.calls), aws.counter.total + aws.enhanced.calls

    assert outcome.action == "quarantined"
    assert aws.tags(index) == ["quarantined-" + index[7:19]]
    assert calls["ecr:DescribeImages"] == 2, calls  # the child, and one page of tagged images
    assert calls["ecr:BatchGetImage"] == 1, calls  # the candidate indexes, whose manifests then serve the block
    assert total <= MAX_CALLS, calls


def test_the_lookup_asks_for_ecr_largest_page_of_tagged_images(aws: Env) -> None:
    aws.create_repository()
    child = aws.push(None, "arm64", media_type=OCI_MANIFEST, manifest=image_manifest("arm64", OCI_MANIFEST))
    requests: list[dict[str, object]] = []
    aws.ecr.meta.events.register(
        "before-parameter-build.ecr.DescribeImages", lambda params, **_: requests.append(dict(params))
    )
    aws.gate().registry.indexes_containing(REPOSITORY, child, None)
    assert requests == [{"repositoryName": REPOSITORY, "filter": {"tagStatus": "TAGGED"}, "maxResults": 1000}]
