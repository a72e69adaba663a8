"""SSM: read and write the policy document (admin tooling; the functions only read it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecr_warden.adapters.aws import client


@dataclass
class PolicyParameter:
    name: str
    _client: Any = field(default=None)

    @property
    def ssm(self) -> Any:
        return self._client or client("ssm")

    def read(self) -> str:
        return str(self.ssm.get_parameter(Name=self.name)["Parameter"]["Value"])

    def write(self, text: str, description: str) -> int:
        """Overwrite the policy; SSM keeps every version, which is the policy's audit trail."""
        response = self.ssm.put_parameter(
            Name=self.name, Value=text, Type="String", Overwrite=True, Description=description[:1024]
        )
        return int(response["Version"])
