"""EventBridge envelopes for the AWS events ecr-warden consumes.

Shapes follow the AWS documentation (see events/README.md for the source of every sample); each model accepts
fields AWS adds later and keeps the quirks AWS really sends (ARN-valued repository names, missing tags, missing
severity counts, human-formatted Inspector timestamps).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from ecr_warden.contracts.common import (
    LENIENT,
    AwsTimestamp,
    Digest,
    RepositoryName,
    SeverityCounts,
)
from ecr_warden.contracts.envelope import EventBridgeModel

ECR_SOURCE = "aws.ecr"
INSPECTOR_SOURCE = "aws.inspector2"
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"


class _Envelope(EventBridgeModel):
    model_config = LENIENT


# --- ECR Image Action ------------------------------------------------------------------------------------------


class EcrImageActionDetail(BaseModel):
    model_config = LENIENT

    result: str
    repository_name: RepositoryName = Field(alias="repository-name")
    image_digest: Digest = Field(alias="image-digest")
    action_type: str = Field(alias="action-type")
    image_tag: str | None = Field(None, alias="image-tag")
    manifest_media_type: str | None = Field(None, alias="manifest-media-type")
    artifact_media_type: str | None = Field(None, alias="artifact-media-type")

    @field_validator("image_tag", mode="before")
    @classmethod
    def _empty_tag_is_none(cls, value: Any) -> Any:
        return value or None  # untagged pushes arrive without the key or with ""


class EcrImageActionEvent(_Envelope):
    source: Literal["aws.ecr"]
    detail_type: Literal["ECR Image Action"] = Field(alias="detail-type")
    detail: EcrImageActionDetail


# --- ECR Image Scan (basic scanning) ---------------------------------------------------------------------------


class ScanResultDetail(BaseModel):
    """What both scan-complete events carry (basic: `ECR Image Scan`; enhanced: `Inspector2 Scan`)."""

    model_config = LENIENT

    scan_status: str = Field(alias="scan-status")
    # Inspector sends the repository ARN here (sometimes with "/sha256:…" appended); RepositoryName strips it.
    repository_name: RepositoryName = Field(alias="repository-name")
    image_digest: Digest = Field(alias="image-digest")
    image_tags: list[str] = Field(default_factory=list, alias="image-tags")
    finding_severity_counts: SeverityCounts | None = Field(None, alias="finding-severity-counts")

    @field_validator("image_tags", mode="before")
    @classmethod
    def _null_tags(cls, value: Any) -> Any:
        return [] if value is None else value


class EcrImageScanDetail(ScanResultDetail):
    pass


class EcrImageScanEvent(_Envelope):
    source: Literal["aws.ecr"]
    detail_type: Literal["ECR Image Scan"] = Field(alias="detail-type")
    detail: EcrImageScanDetail


# --- Inspector2 Scan (enhanced scanning) -----------------------------------------------------------------------


class Inspector2ScanDetail(ScanResultDetail):
    version: str | None = None


class Inspector2ScanEvent(_Envelope):
    source: Literal["aws.inspector2"]
    detail_type: Literal["Inspector2 Scan"] = Field(alias="detail-type")
    detail: Inspector2ScanDetail


# --- Inspector2 Finding ----------------------------------------------------------------------------------------


class VulnerablePackage(BaseModel):
    model_config = LENIENT

    name: str
    version: str | None = None
    fixed_in_version: str | None = Field(None, alias="fixedInVersion")
    package_manager: str | None = Field(None, alias="packageManager")
    remediation: str | None = None


class CvssScore(BaseModel):
    model_config = LENIENT

    base_score: float | None = Field(None, alias="baseScore")
    scoring_vector: str | None = Field(None, alias="scoringVector")
    source: str | None = None
    version: str | None = None


class PackageVulnerabilityDetails(BaseModel):
    model_config = LENIENT

    vulnerability_id: str = Field(alias="vulnerabilityId")
    vulnerable_packages: list[VulnerablePackage] = Field(default_factory=list, alias="vulnerablePackages")
    cvss: list[CvssScore] = Field(default_factory=list)
    reference_urls: list[str] = Field(default_factory=list, alias="referenceUrls")
    source_url: str | None = Field(None, alias="sourceUrl")
    vendor_severity: str | None = Field(None, alias="vendorSeverity")


class EcrContainerImageDetails(BaseModel):
    model_config = LENIENT

    repository_name: RepositoryName = Field(alias="repositoryName")
    image_hash: Digest = Field(alias="imageHash")
    image_tags: list[str] = Field(default_factory=list, alias="imageTags")
    platform: str | None = None
    architecture: str | None = None
    registry: str | None = None
    pushed_at: AwsTimestamp | None = Field(None, alias="pushedAt")


class FindingResourceDetails(BaseModel):
    model_config = LENIENT

    aws_ecr_container_image: EcrContainerImageDetails | None = Field(None, alias="awsEcrContainerImage")


class FindingResource(BaseModel):
    model_config = LENIENT

    type: str
    id: str
    details: FindingResourceDetails | None = None
    region: str | None = None


class Inspector2FindingDetail(BaseModel):
    """An Inspector finding, as sent in the event and as returned by ListFindings (same shape)."""

    model_config = LENIENT

    aws_account_id: str = Field(alias="awsAccountId")
    finding_arn: str = Field(alias="findingArn")
    severity: str
    status: str
    type: str
    title: str | None = None
    description: str | None = None
    resources: list[FindingResource] = Field(min_length=1)
    package_vulnerability_details: PackageVulnerabilityDetails | None = Field(None, alias="packageVulnerabilityDetails")
    inspector_score: float | None = Field(None, alias="inspectorScore")
    exploit_available: str | None = Field(None, alias="exploitAvailable")
    fix_available: str | None = Field(None, alias="fixAvailable")
    first_observed_at: AwsTimestamp | None = Field(None, alias="firstObservedAt")
    last_observed_at: AwsTimestamp | None = Field(None, alias="lastObservedAt")
    updated_at: AwsTimestamp | None = Field(None, alias="updatedAt")

    @property
    def ecr_image(self) -> EcrContainerImageDetails | None:
        for resource in self.resources:
            if resource.type == "AWS_ECR_CONTAINER_IMAGE" and resource.details:
                return resource.details.aws_ecr_container_image
        return None


class Inspector2FindingEvent(_Envelope):
    source: Literal["aws.inspector2"]
    detail_type: Literal["Inspector2 Finding"] = Field(alias="detail-type")
    detail: Inspector2FindingDetail

    @field_validator("detail")
    @classmethod
    def _ecr_image_only(cls, detail: Inspector2FindingDetail) -> Inspector2FindingDetail:
        if detail.ecr_image is None:
            raise ValueError("finding has no AWS_ECR_CONTAINER_IMAGE resource")
        return detail


# --- AWS API Call via CloudTrail (ECR control plane) -----------------------------------------------------------

EcrApiCall = Literal[
    "CreateRepository",
    "PutImageTagMutability",
    "PutImageScanningConfiguration",
    "PutLifecyclePolicy",
    "DeleteLifecyclePolicy",
    "SetRepositoryPolicy",
    "DeleteRepositoryPolicy",
    "TagResource",
    "UntagResource",
    "PutRegistryScanningConfiguration",
]


class SessionIssuer(BaseModel):
    model_config = LENIENT

    type: str | None = None
    arn: str | None = None
    user_name: str | None = Field(None, alias="userName")


class SessionContext(BaseModel):
    model_config = LENIENT

    session_issuer: SessionIssuer | None = Field(None, alias="sessionIssuer")


class UserIdentity(BaseModel):
    model_config = LENIENT

    type: str | None = None
    arn: str | None = None
    principal_id: str | None = Field(None, alias="principalId")
    account_id: str | None = Field(None, alias="accountId")
    invoked_by: str | None = Field(None, alias="invokedBy")
    session_context: SessionContext | None = Field(None, alias="sessionContext")

    @property
    def role_arn(self) -> str | None:
        """The IAM role behind an assumed-role session, the stable identity to compare with our own roles."""
        if self.session_context and self.session_context.session_issuer:
            return self.session_context.session_issuer.arn
        return None


class CloudTrailEcrDetail(BaseModel):
    model_config = LENIENT

    event_source: Literal["ecr.amazonaws.com"] = Field(alias="eventSource")
    event_name: EcrApiCall = Field(alias="eventName")
    event_time: AwsTimestamp = Field(alias="eventTime")
    event_id: str = Field(alias="eventID")
    aws_region: str = Field(alias="awsRegion")
    user_identity: UserIdentity = Field(default_factory=UserIdentity, alias="userIdentity")
    user_agent: str | None = Field(None, alias="userAgent")
    source_ip_address: str | None = Field(None, alias="sourceIPAddress")  # "ecr.amazonaws.com" for ECR's own calls
    request_parameters: dict[str, Any] | None = Field(None, alias="requestParameters")
    response_elements: dict[str, Any] | None = Field(None, alias="responseElements")
    error_code: str | None = Field(None, alias="errorCode")
    error_message: str | None = Field(None, alias="errorMessage")

    @property
    def repository_name(self) -> str | None:
        params = self.request_parameters or {}
        name = params.get("repositoryName")
        if isinstance(name, str):
            return name
        arn = params.get("resourceArn")  # TagResource / UntagResource name the repository by ARN
        if isinstance(arn, str):
            from ecr_warden.contracts.common import repository_name_from

            return repository_name_from(arn)
        return None


class CloudTrailEcrEvent(_Envelope):
    source: Literal["aws.ecr"]
    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    detail: CloudTrailEcrDetail


AwsEvent = EcrImageActionEvent | EcrImageScanEvent | Inspector2ScanEvent | Inspector2FindingEvent | CloudTrailEcrEvent

# (source, detail-type) -> model; the single place that says which AWS events ecr-warden understands.
EVENT_MODELS: dict[tuple[str, str], type[_Envelope]] = {
    (ECR_SOURCE, "ECR Image Action"): EcrImageActionEvent,
    (ECR_SOURCE, "ECR Image Scan"): EcrImageScanEvent,
    (INSPECTOR_SOURCE, "Inspector2 Scan"): Inspector2ScanEvent,
    (INSPECTOR_SOURCE, "Inspector2 Finding"): Inspector2FindingEvent,
    (ECR_SOURCE, CLOUDTRAIL_DETAIL_TYPE): CloudTrailEcrEvent,
}
