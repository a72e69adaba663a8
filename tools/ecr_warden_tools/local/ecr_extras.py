"""ECR calls moto lacks or answers unlike AWS, added to moto's ECR service for the local stack.

- StartLifecyclePolicyPreview / GetLifecyclePolicyPreview: a real evaluation of the rules over the repository's
  images (`lifecycle.py`), taken when the preview starts, as ECR does.
- Create/Describe/DeletePullThroughCacheRule and Create/Describe/Update/DeleteRepositoryCreationTemplate: stored per
  account and region, with ECR's validation and errors (they configure, they do not act: nothing is pulled through
  and no repository is created from a template locally).
- PutImageTagMutability answers the exclusion filters it set; PutImage into a missing repository is
  RepositoryNotFoundException (moto fails with an internal error); PutRegistryScanningConfiguration validates the
  scan type, frequencies and filters, and WILDCARD filters match whole repository names (moto matches substrings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecr_warden_tools.local.lifecycle import ImageRecord, LifecyclePolicyError, evaluate, parse_policy

PREVIEW_PAGE = 100  # GetLifecyclePolicyPreview's largest page
_REPOSITORY_PREFIX = re.compile(r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*/?|ROOT)$")
_FILTER = re.compile(r"^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$")
# upstream registry URL -> (upstreamRegistry, needs a Secrets Manager credential)
_UPSTREAMS: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"^public\.ecr\.aws$"), "ecr-public", False),
    (re.compile(r"^registry\.k8s\.io$"), "k8s", False),
    (re.compile(r"^quay\.io$"), "quay", False),
    (re.compile(r"^registry-1\.docker\.io$"), "docker-hub", True),
    (re.compile(r"^ghcr\.io$"), "github-container-registry", True),
    (re.compile(r"^[a-z0-9]+\.azurecr\.io$"), "azure-container-registry", True),
    (re.compile(r"^registry\.gitlab\.com$"), "gitlab-container-registry", True),
    (re.compile(r"^cgr\.dev$"), "chainguard", False),
    (re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com$"), "ecr", False),
)
SCAN_FREQUENCIES = {"BASIC": ("SCAN_ON_PUSH", "MANUAL"), "ENHANCED": ("SCAN_ON_PUSH", "CONTINUOUS_SCAN", "MANUAL")}


@dataclass
class _Preview:
    policy_text: str
    results: list[dict[str, Any]]


@dataclass
class RegistryExtras:
    """What this module keeps per moto ECR backend (one per account and region)."""

    previews: dict[str, _Preview] = field(default_factory=dict)
    cache_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)


def extras(backend: Any) -> RegistryExtras:
    found: RegistryExtras = backend.__dict__.setdefault("_ecr_warden_extras", RegistryExtras())
    return found


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import ServiceException

    error_class = type(code, (ServiceException,), {"code": code})
    error: Exception = error_class(message)
    return error


def _now() -> datetime:
    return datetime.now(UTC)


# -- lifecycle policy preview -----------------------------------------------------------------------------------


def _image_records(repository: Any) -> list[ImageRecord]:
    return [
        ImageRecord(
            image.image_digest,
            tuple(image.image_tags or ()),
            datetime.fromtimestamp(int(image.image_pushed_at), UTC),
        )
        for image in repository.images
    ]


def start_lifecycle_policy_preview(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.ecr.exceptions import LifecyclePolicyNotFoundException

    repository = self.ecr_backend._get_repository(self._get_param("repositoryName"), self._get_param("registryId"))
    text = self._get_param("lifecyclePolicyText") or repository.lifecycle_policy
    if not text:
        raise LifecyclePolicyNotFoundException(repository.name, repository.registry_id)
    try:
        rules = parse_policy(text)
    except LifecyclePolicyError as exc:
        raise _error("InvalidParameterException", str(exc)) from None
    results = [
        {
            "imageTags": list(result.image.tags),
            "imageDigest": result.image.digest,
            "imagePushedAt": result.image.pushed_at,
            "action": {"type": result.rule.action}
            | ({"targetStorageClass": result.rule.target_storage_class} if result.rule.target_storage_class else {}),
            "appliedRulePriority": result.rule.priority,
            "storageClass": "STANDARD",
        }
        for result in evaluate(rules, _image_records(repository), _now())
    ]
    extras(self.ecr_backend).previews[repository.name] = _Preview(text, results)
    return ActionResult(
        {
            "registryId": repository.registry_id,
            "repositoryName": repository.name,
            "lifecyclePolicyText": text,
            "status": "IN_PROGRESS",
        }
    )


def _preview_filter(results: list[dict[str, Any]], tag_status: str, image_ids: list[dict[str, str]]) -> list[Any]:
    if tag_status != "ANY":
        results = [r for r in results if bool(r["imageTags"]) is (tag_status == "TAGGED")]
    if image_ids:
        wanted_digests = {i.get("imageDigest") for i in image_ids} - {None}
        wanted_tags = {i.get("imageTag") for i in image_ids} - {None}
        results = [r for r in results if r["imageDigest"] in wanted_digests or wanted_tags & set(r["imageTags"])]
    return results


def get_lifecycle_policy_preview(self: Any) -> Any:
    from moto.core.responses import ActionResult

    repository = self.ecr_backend._get_repository(self._get_param("repositoryName"), self._get_param("registryId"))
    preview = extras(self.ecr_backend).previews.get(repository.name)
    if preview is None:
        raise _error(
            "LifecyclePolicyPreviewNotFoundException",
            f"There is no dry run for the repository with name '{repository.name}' "
            f"in the registry with id '{repository.registry_id}'",
        )
    tag_status = (self._get_param("filter") or {}).get("tagStatus", "ANY")
    results = _preview_filter(preview.results, tag_status, self._get_param("imageIds") or [])
    size = min(int(self._get_param("maxResults") or PREVIEW_PAGE), PREVIEW_PAGE)
    start = int(self._get_param("nextToken") or 0)
    page = results[start : start + size]
    transitions: dict[str, int] = {}
    for result in preview.results:
        if result["action"]["type"] == "TRANSITION":
            target = result["action"].get("targetStorageClass", "ARCHIVE")
            transitions[target] = transitions.get(target, 0) + 1
    summary: dict[str, Any] = {
        "expiringImageTotalCount": sum(1 for r in preview.results if r["action"]["type"] == "EXPIRE")
    }
    if transitions:
        summary["transitioningImageTotalCounts"] = [
            {"targetStorageClass": target, "imageTotalCount": count} for target, count in sorted(transitions.items())
        ]
    answer: dict[str, Any] = {
        "registryId": repository.registry_id,
        "repositoryName": repository.name,
        "lifecyclePolicyText": preview.policy_text,
        "status": "COMPLETE",
        "previewResults": page,
        "summary": summary,
    }
    if start + size < len(results):
        answer["nextToken"] = str(start + size)
    return ActionResult(answer)


# -- pull-through cache rules -----------------------------------------------------------------------------------


def _upstream(url: str, given: str | None, credential: str | None) -> str:
    for pattern, registry, needs_credential in _UPSTREAMS:
        if pattern.match(url):
            if given and given != registry:
                raise _error("ValidationException", f"upstreamRegistry {given} does not match {url}")
            if needs_credential and not credential:
                raise _error(
                    "ValidationException", f"A credentialArn is required for the upstream registry {registry} ({url})"
                )
            return registry
    raise _error("UnsupportedUpstreamRegistryException", f"The upstream registry {url} is not supported")


def create_pull_through_cache_rule(self: Any) -> Any:
    from moto.core.responses import ActionResult

    prefix = self._get_param("ecrRepositoryPrefix")
    url = self._get_param("upstreamRegistryUrl")
    if not _REPOSITORY_PREFIX.match(prefix or "") or len(prefix) < 2:
        raise _error("InvalidParameterException", f"Invalid parameter at 'ecrRepositoryPrefix': {prefix!r}")
    rules = extras(self.ecr_backend).cache_rules
    if prefix in rules:
        raise _error(
            "PullThroughCacheRuleAlreadyExistsException",
            f"A pull through cache rule with prefix '{prefix}' already exists in the registry "
            f"with id '{self.ecr_backend.account_id}'",
        )
    credential = self._get_param("credentialArn")
    rule = {
        "ecrRepositoryPrefix": prefix,
        "upstreamRegistryUrl": url,
        "createdAt": _now(),
        "registryId": self.ecr_backend.account_id,
        "upstreamRegistry": _upstream(url, self._get_param("upstreamRegistry"), credential),
    }
    for key in ("credentialArn", "customRoleArn", "upstreamRepositoryPrefix"):
        if self._get_param(key):
            rule[key] = self._get_param(key)
    rules[prefix] = rule
    return ActionResult(dict(rule))


def _cache_rule(self: Any, prefix: str) -> dict[str, Any]:
    rule = extras(self.ecr_backend).cache_rules.get(prefix)
    if rule is None:
        raise _error(
            "PullThroughCacheRuleNotFoundException",
            f"The pull through cache rule with prefix '{prefix}' does not exist in the registry "
            f"with id '{self.ecr_backend.account_id}'",
        )
    return rule


def describe_pull_through_cache_rules(self: Any) -> Any:
    from moto.core.responses import ActionResult

    prefixes = self._get_param("ecrRepositoryPrefixes")
    rules = extras(self.ecr_backend).cache_rules
    found = [_cache_rule(self, p) for p in prefixes] if prefixes else [rules[p] for p in sorted(rules)]
    return ActionResult({"pullThroughCacheRules": [dict(rule) for rule in found]})


def delete_pull_through_cache_rule(self: Any) -> Any:
    from moto.core.responses import ActionResult

    prefix = self._get_param("ecrRepositoryPrefix")
    rule = _cache_rule(self, prefix)
    del extras(self.ecr_backend).cache_rules[prefix]
    return ActionResult({k: v for k, v in rule.items() if k != "upstreamRegistry"})


# -- repository creation templates ------------------------------------------------------------------------------

_TEMPLATE_FIELDS = (
    "description",
    "encryptionConfiguration",
    "resourceTags",
    "imageTagMutability",
    "imageTagMutabilityExclusionFilters",
    "repositoryPolicy",
    "lifecyclePolicy",
    "appliedFor",
    "customRoleArn",
)


def _check_exclusion_filters(mutability: str, filters: Any) -> None:
    """ECR: exclusion filters go with a *_WITH_EXCLUSION mutability, and only with it."""
    if str(mutability).endswith("_WITH_EXCLUSION") != bool(filters):
        raise _error(
            "InvalidParameterException",
            "Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: exclusion "
            f"filters are needed with, and only with, a *_WITH_EXCLUSION mutability (got {mutability})",
        )


def _template_settings(self: Any, base: dict[str, Any]) -> dict[str, Any]:
    settings = dict(base)
    for key in _TEMPLATE_FIELDS:
        value = self._get_param(key)
        if value is not None:
            settings[key] = value
    plain = not str(settings.get("imageTagMutability")).endswith("_WITH_EXCLUSION")
    if plain and self._get_param("imageTagMutabilityExclusionFilters") is None:
        settings.pop("imageTagMutabilityExclusionFilters", None)  # an update to a plain mutability drops them
    if settings.get("lifecyclePolicy"):
        try:
            parse_policy(settings["lifecyclePolicy"])
        except LifecyclePolicyError as exc:
            raise _error("InvalidParameterException", str(exc)) from None
    _check_exclusion_filters(
        settings.get("imageTagMutability", "MUTABLE"), settings.get("imageTagMutabilityExclusionFilters")
    )
    return settings


def _template_answer(self: Any, template: dict[str, Any]) -> Any:
    from moto.core.responses import ActionResult

    return ActionResult({"registryId": self.ecr_backend.account_id, "repositoryCreationTemplate": dict(template)})


def _template(self: Any, prefix: str) -> dict[str, Any]:
    template = extras(self.ecr_backend).templates.get(prefix)
    if template is None:
        raise _error(
            "TemplateNotFoundException",
            f"The repository creation template with prefix '{prefix}' does not exist in the registry "
            f"with id '{self.ecr_backend.account_id}'",
        )
    return template


def create_repository_creation_template(self: Any) -> Any:
    prefix = self._get_param("prefix")
    if not _REPOSITORY_PREFIX.match(prefix or ""):
        raise _error("InvalidParameterException", f"Invalid parameter at 'prefix': {prefix!r}")
    templates = extras(self.ecr_backend).templates
    if prefix in templates:
        raise _error(
            "TemplateAlreadyExistsException",
            f"A repository creation template with prefix '{prefix}' already exists in the registry "
            f"with id '{self.ecr_backend.account_id}'",
        )
    now = _now()
    defaults = {
        "prefix": prefix,
        "encryptionConfiguration": {"encryptionType": "AES256"},
        "imageTagMutability": "MUTABLE",
        "createdAt": now,
        "updatedAt": now,
    }
    templates[prefix] = _template_settings(self, defaults)
    return _template_answer(self, templates[prefix])


def describe_repository_creation_templates(self: Any) -> Any:
    from moto.core.responses import ActionResult

    prefixes = self._get_param("prefixes")
    templates = extras(self.ecr_backend).templates
    found = [templates[p] for p in (prefixes or sorted(templates)) if p in templates]
    return ActionResult(
        {"registryId": self.ecr_backend.account_id, "repositoryCreationTemplates": [dict(t) for t in found]}
    )


def update_repository_creation_template(self: Any) -> Any:
    prefix = self._get_param("prefix")
    updated = _template_settings(self, _template(self, prefix)) | {"updatedAt": _now()}
    extras(self.ecr_backend).templates[prefix] = updated
    return _template_answer(self, updated)


def delete_repository_creation_template(self: Any) -> Any:
    prefix = self._get_param("prefix")
    template = _template(self, prefix)
    del extras(self.ecr_backend).templates[prefix]
    return _template_answer(self, template)


# -- corrections of calls moto has ------------------------------------------------------------------------------


def _wildcard_match(repository_filter: str, repository_name: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in repository_filter.split("*"))
    return re.fullmatch(pattern, repository_name) is not None


def _validate_scanning_rules(scan_type: Any, rules: list[dict[str, Any]]) -> None:
    if scan_type not in SCAN_FREQUENCIES:
        raise _error("ValidationException", f"scanType must be BASIC or ENHANCED, not {scan_type!r}")
    if len(rules) > 2:
        raise _error("ValidationException", "A registry scanning configuration has at most 2 rules")
    for rule in rules:
        frequency = rule.get("scanFrequency")
        if frequency not in SCAN_FREQUENCIES[scan_type]:
            raise _error(
                "ValidationException",
                f"scanFrequency {frequency} is not supported with scanType {scan_type} "
                f"(supported: {', '.join(SCAN_FREQUENCIES[scan_type])})",
            )
        for repository_filter in rule.get("repositoryFilters") or []:
            if repository_filter.get("filterType") != "WILDCARD" or not _FILTER.match(repository_filter["filter"]):
                raise _error(
                    "ValidationException",
                    f"Invalid repository filter {repository_filter.get('filter')!r} "
                    f"(type {repository_filter.get('filterType')}): use WILDCARD filters of repository-name characters "
                    "and *",
                )


def apply() -> None:
    from moto.core.responses import ActionResult
    from moto.ecr.exceptions import RepositoryNotFoundException
    from moto.ecr.models import ECRBackend
    from moto.ecr.responses import ECRResponse

    original_put_image = ECRResponse.put_image
    original_put_mutability = ECRResponse.put_image_tag_mutability

    def put_image(self: Any) -> Any:
        name = self._get_param("repositoryName")
        if name not in self.ecr_backend.repositories:
            raise RepositoryNotFoundException(name, self._get_param("registryId") or self.ecr_backend.account_id)
        return original_put_image(self)

    def put_image_tag_mutability(self: Any) -> Any:
        _check_exclusion_filters(
            self._get_param("imageTagMutability"), self._get_param("imageTagMutabilityExclusionFilters")
        )
        answered: Any = original_put_mutability(self).result
        answer: dict[str, Any] = dict(answered)
        filters = self._get_param("imageTagMutabilityExclusionFilters")
        if filters:
            answer["imageTagMutabilityExclusionFilters"] = filters
        return ActionResult(answer)

    def put_registry_scanning_configuration(self: Any) -> Any:
        scan_type, rules = self._get_param("scanType"), self._get_param("rules") or []
        _validate_scanning_rules(scan_type, rules)
        self.ecr_backend.put_registry_scanning_configuration(scan_type, rules)
        return ActionResult({"registryScanningConfiguration": {"scanType": scan_type, "rules": rules}})

    ECRResponse.put_image = put_image  # type: ignore[method-assign]
    ECRResponse.put_image_tag_mutability = put_image_tag_mutability  # type: ignore[method-assign]
    ECRResponse.put_registry_scanning_configuration = put_registry_scanning_configuration  # type: ignore[method-assign]
    ECRBackend._match_repository_filter = lambda _self, f, name: _wildcard_match(f, name)  # type: ignore[method-assign,assignment]
    for added in (
        start_lifecycle_policy_preview,
        get_lifecycle_policy_preview,
        create_pull_through_cache_rule,
        describe_pull_through_cache_rules,
        delete_pull_through_cache_rule,
        create_repository_creation_template,
        describe_repository_creation_templates,
        update_repository_creation_template,
        delete_repository_creation_template,
    ):
        setattr(ECRResponse, added.__name__, added)
