"""`sam build` on this host (Python 3.11, no Docker) produces layers for python3.13 on arm64."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
    (build_dir / "sam-build.log").write_text(completed.stdout + completed.stderr, encoding="utf-8")
    return build_dir


def _compiled_for_the_target(built: Path) -> bool:
    """Whether this build had python3.13 to compile the layers' bytecode with (the Makefiles say which)."""
    log = (built / "sam-build.log").read_text(encoding="utf-8")
    compiled = "SharedLayer: bytecode compiled for python3.13" in log
    assert compiled != ("SharedLayer: python3.13 not found: layer shipped without bytecode" in log), log[-3000:]
    return compiled


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
    assert (package / "gate" / "entry.py").is_file()
    assert (package / "policy" / "default-policy.yaml").is_file()
    assert not (package / "local").exists()
    assert not list(package.rglob("cli.py"))
    assert not list(package.rglob("demo.py"))


@pytest.mark.parametrize("layer", ["SharedLayer", "DependenciesLayer"])
def test_layers_ship_bytecode_for_python313_only(built: Path, layer: str) -> None:
    """The runtime's Python can't write bytecode into /opt: a layer ships it, compiled for python3.13 (never for the
    build host's Python), or, when the build had no python3.13, ships none and the build output says so."""
    python = built / layer / "python"
    compiled = list(python.rglob("*.pyc"))
    assert all(p.parent.name == "__pycache__" and p.name.endswith(".cpython-313.pyc") for p in compiled)
    if not _compiled_for_the_target(built):
        assert compiled == []
        assert not list(python.rglob("__pycache__"))
        return
    sources = [p for p in python.rglob("*.py") if "__pycache__" not in p.parts]
    assert sources
    assert [p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.cpython-313.pyc").is_file()] == []
    for pyc in compiled[:50]:  # unchecked-hash: sam zips files with a 1980 date, so timestamps would never match
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, pyc


def test_function_artifacts_hold_only_project_code(built: Path) -> None:
    function = built / "ScanGateFunction"
    assert sorted(p.name for p in function.iterdir() if not p.name.startswith(".")) == ["app.py"]


# What the python3.13 Lambda runtime itself provides next to the layers (boto3 and its closure).
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six")


def _only_layer_dependencies(target: Path) -> Path:
    """A folder holding exactly the dependency layer's distributions (for this host) and the runtime's boto3."""
    from importlib import metadata

    requirements = (ROOT / "layers/deps/requirements.txt").read_text(encoding="utf-8").splitlines()
    names = [line.split("==")[0].strip() for line in requirements if line.strip() and not line.startswith("#")]
    for name in (*names, *RUNTIME_DISTRIBUTIONS):
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".data")) or top == ".." or top == "__pycache__":
                continue
            source = Path(str(distribution.locate_file(top)))
            link = target / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    return target


def test_every_module_of_the_built_layer_imports_with_only_the_layers_dependencies(built: Path, tmp_path: Path) -> None:
    deps = _only_layer_dependencies(tmp_path)
    shared = built / "SharedLayer" / "python"
    script = (
        "import importlib, pkgutil, sys\n"
        "import ecr_warden\n"
        "names = [m.name for m in pkgutil.walk_packages(ecr_warden.__path__, 'ecr_warden.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "leaked = sorted(n for n in sys.modules if n.split('.')[0] in ('moto', 'werkzeug', 'ecr_warden_tools'))\n"
        "assert not leaked, leaked\n"
        "print(len(names))\n"
    )
    paths = f"import sys; sys.path[:0] = [{str(shared)!r}, {str(deps)!r}]\n"
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", paths + script],  # -B: never write this host's bytecode in the layer
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert int(completed.stdout.strip()) >= 30
