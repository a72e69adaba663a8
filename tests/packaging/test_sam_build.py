"""`sam build` on this host (Python 3.11, no Docker) produces layers for python3.13 on arm64."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sam = shutil.which("sam")
    assert sam, "sam CLI not on PATH: run the tests through `make test`, which installs it"
    build_dir = tmp_path_factory.mktemp("sam-build")
    completed = subprocess.run(
        [sam, "build", "--template-file", str(ROOT / "template.yaml"), "--build-dir", str(build_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return build_dir


def test_dependency_layer_targets_python313_arm64(built: Path) -> None:
    python = built / "DependenciesLayer" / "python"
    binaries = [p.name for p in (python / "pydantic_core").glob("_pydantic_core*.so")]
    assert binaries == ["_pydantic_core.cpython-313-aarch64-linux-gnu.so"]
    assert (python / "aws_lambda_powertools").is_dir()
    assert (python / "slack_sdk").is_dir()


def test_dependency_layer_leaves_boto3_to_the_runtime(built: Path) -> None:
    python = built / "DependenciesLayer" / "python"
    assert not (python / "boto3").exists()
    assert not (python / "botocore").exists()


def test_shared_layer_holds_the_package_without_dev_tooling(built: Path) -> None:
    package = built / "SharedLayer" / "python" / "ecr_warden"
    assert (package / "gate" / "service.py").is_file()
    assert (package / "policy" / "default-policy.yaml").is_file()
    assert not (package / "local").exists()
    assert not list(package.rglob("__pycache__"))


def test_function_artifacts_hold_only_project_code(built: Path) -> None:
    function = built / "ScanGateFunction"
    assert sorted(p.name for p in function.iterdir() if not p.name.startswith(".")) == ["app.py"]
