"""Cold start as users pay it: a fresh interpreter imports the handler and completes its first invocation against
a local AWS endpoint, next to a bare boto3 script that makes the same AWS calls (same operations, same order,
same parameters, same endpoint). Part of `make bench` (benchmarks/run.py); also runnable alone:

    .venv/bin/python benchmarks/cold_start.py [--runs 11] [--scenario clean|critical|notifier|guard|exempt-list|report]
        [--shared DIR] [--name NAME --compare NAME=DIR ...]   # several layers/shared builds in the same runs
        [--bytecode with|without|both] [--preload]            # the layer builds; the ablation
        [--python python3.13]                                 # the functions and the floor on Lambda's Python

Every function has a scenario: the gate (a clean and a CRITICAL scan result), the notifier (a quarantined
decision), the settings guard (CloudTrail's CreateRepository for a new repository) and the admin function (an
`exempt list` and a `report` of one repository).

How it is played (docs/PERFORMANCE.md has the why):

- A moto server (ThreadedMotoServer) listens on 127.0.0.1 on a free port; template.yaml is provisioned on it
  with the tools' Provisioner, so each function gets the environment the template gives it, pointing at real
  local resources; AWS_ENDPOINT_URL sends every client there. A plain http.server on loopback plays the Slack
  webhook; its URL is stored in the stack's Secrets Manager secret.
- Each run is a new process started as Lambda would: `-I -S -B` (no site-packages, no bytecode written: /opt is
  read-only) with a sys.path of the function folder, the shared layer, the dependency layer and the runtime's
  boto3 (links to the venv's, with its bytecode, as the runtime ships it).
- The layers are copies of layers/shared/ecr_warden and of the venv's installs of layers/deps/requirements.txt,
  built twice: compiled with `compileall --invalidation-mode unchecked-hash` (what layers/*/Makefile ship when
  the build machine has the target Python) and without bytecode (what they ship when it has not).
- The floor replays the handler's AWS calls, traced in one run (operation, order, parameters, the error code
  it expected), with this run's image in place of the traced one, on default boto3 clients; the notifier's
  floor then POSTs the same Slack body with urllib. The bench traces the bare script too and reports whether
  both made the same calls.
- Each run is a first decision about a new image (a new digest, a fresh Slack send slot), and the bench checks
  that it was: the handler's result, and one webhook POST per notifier run. moto's Inspector ListFindings
  ignores filters and answers from a queue: the bench queues the new image's findings before each run.
- After one warm-up of each, runs are interleaved in rounds (each build and the bare script, the order rotated
  from round to round); times are medians, and a ratio is the median of each run's ratio to the bare run of its
  round.
  Time is taken inside the process, from its first statement to the end of the invocation (interpreter start-up
  is the same for both and not counted): wall time (the target) and CPU time (steadier on a busy machine).
  Memory is the process's peak RSS (VmHWM), what Lambda reports as "Max Memory Used"; ru_maxrss would report
  the bench's own size, which Linux carries over fork and exec. The traced runs also report the Python heap's
  peak (tracemalloc): Python objects only, so less than RSS, but it shows what our own code and models allocate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tools", ROOT / "layers" / "shared"):  # a script, not a test: no pytest pythonpath here
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

ACCOUNT = "123456789012"
REGION = "us-east-1"
REPOSITORY = "ses-base/api-server"
REPORT_REPOSITORY = "bench/report"  # the admin report's: one image, the same at every run
SETTINGS_GUARD_RESULTS = ("enforced",)  # a new repository with ECR's defaults: the policy applied
TARGET_RATIO = 1.3
RUNS = 11
# What the python3.13 Lambda runtime provides next to the layers (boto3 and its closure).
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six")

# --- the scripts each run executes -------------------------------------------------------------------------------

_PROLOGUE = """\
import sys, time
sys.path[:0] = {paths!r}
{trace}_t0, _c0 = time.perf_counter(), time.process_time()
"""
# Installed before the clock starts, in the traced runs only: every AWS call a script makes, in order, with its
# parameters and the error code it ended with (if any), and the peak of the Python heap (tracemalloc).
_TRACE = """\
import tracemalloc as _tracemalloc
_tracemalloc.start()  # the Python heap's peak, in traced runs only (tracing slows every allocation)
import json as _json, base64 as _base64
import botocore.client as _bc
_calls = []
_call = _bc.BaseClient._make_api_call
def _encode(value):
    if isinstance(value, bytes):
        return {"__bytes__": _base64.b64encode(value).decode()}
    return str(value)
def _traced(self, name, params):
    entry = [self.meta.service_model.service_name, name, _json.loads(_json.dumps(params, default=_encode)), None]
    _calls.append(entry)
    try:
        return _call(self, name, params)
    except Exception as exc:
        entry[3] = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise
_bc.BaseClient._make_api_call = _traced
"""
_EPILOGUE = """
_ms, _cpu_ms = (time.perf_counter() - _t0) * 1000, (time.process_time() - _c0) * 1000
_heap = _tracemalloc.get_traced_memory()[1] if "_tracemalloc" in globals() else None
import json as _json
# VmHWM: this process's peak RSS (ru_maxrss would report the bench's own size: Linux carries it over fork/exec).
with open("/proc/self/status") as _status:
    _hwm = next(int(line.split()[1]) for line in _status if line.startswith("VmHWM:"))
print("BENCH " + _json.dumps({
    "ms": _ms,
    "cpu_ms": _cpu_ms,
    "import_ms": (_t_import - _t0) * 1000 if "_t_import" in globals() else None,
    "maxrss_kib": _hwm,
    "heap_peak_kib": _heap / 1024 if _heap is not None else None,
    "result": _result,
    "calls": _calls if "_calls" in globals() else None,
}, default=str), flush=True)
"""
_HANDLER = """\
sys.path.insert(0, {code_dir!r})
import app
_t_import = time.perf_counter()
class _Context:
    function_name = {function_name!r}
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:{region}:{account}:function:" + function_name
    memory_limit_in_mb = 512
    aws_request_id = {request_id!r}
    log_group_name = "/aws/lambda/" + function_name
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 60000
import json
_result = app.lambda_handler(json.loads({event!r}), _Context())
"""
# The floor: what a bare script does to make the same AWS calls (the handler's, as traced, with this run's image),
# one default boto3 client per service, created at first use, as the handler does.
_BARE = """\
import json
import boto3
from botocore.exceptions import ClientError
clients, responses = {{}}, {{}}
for service, method, params, expected_error in json.loads({calls!r}):
    client = clients.get(service)
    if client is None:
        client = clients[service] = boto3.client(service)
    try:
        responses[service] = getattr(client, method)(**params)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != expected_error:
            raise
"""
_BARE_SLACK = """\
import urllib.request
url = json.loads(responses["secretsmanager"]["SecretString"])["url"]
request = urllib.request.Request(url, data={body!r}, headers={{"Content-Type": "application/json;charset=utf-8"}})
with urllib.request.urlopen(request, timeout=10) as response:
    response.read()
"""
_BARE_END = """\
_result = "ok"
"""

# --- the local AWS endpoint and the Slack webhook ----------------------------------------------------------------


class _Webhook(BaseHTTPRequestHandler):
    posts = 0
    last_body = b""

    def do_POST(self) -> None:
        type(self).last_body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).posts += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class LocalAws:
    """A moto server on loopback with template.yaml provisioned on it, and a Slack webhook catcher."""

    endpoint: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    function_names: dict[str, str] = field(default_factory=dict)
    _server: Any = None
    _webhook: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def start(self) -> LocalAws:
        from moto.server import ThreadedMotoServer

        from ecr_warden_tools.local import moto_patches
        from ecr_warden_tools.local.provision import Provisioner
        from ecr_warden_tools.local.template import Resolver, load_template, parameter_defaults

        moto_patches.apply()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        template = load_template(ROOT / "template.yaml")
        resolver = Resolver(template, parameter_defaults(template), REGION, ACCOUNT)
        stack = Provisioner(self.client, template, ROOT, resolver).run()
        self.outputs = stack.outputs
        for logical_id, spec in stack.functions.items():
            self.environments[logical_id] = spec.environment
            self.function_names[logical_id] = spec.name
        self._webhook = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
        threading.Thread(target=self._webhook.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{self._webhook.server_address[1]}/services/T000/B000/bench"
        self.client("secretsmanager").put_secret_value(
            SecretId=self.outputs["SlackWebhookSecretArn"], SecretString=json.dumps({"url": url})
        )
        self.client("ecr").create_repository(repositoryName=REPOSITORY)
        from ecr_warden_tools.local.images import image_manifest

        self.client("ecr").create_repository(repositoryName=REPORT_REPOSITORY)
        self.client("ecr").put_image(
            repositoryName=REPORT_REPOSITORY, imageManifest=image_manifest("report"), imageTag="v1"
        )
        return self

    def stop(self) -> None:
        if self._webhook is not None:
            self._webhook.shutdown()
        if self._server is not None:
            self._server.stop()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(
                service,
                region_name=REGION,
                endpoint_url=self.endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # moto's fake credentials
            )
        return self._clients[service]

    @property
    def webhook_posts(self) -> int:
        return _Webhook.posts

    def queue_findings(self, findings: list[dict[str, Any]]) -> None:
        """moto answers ListFindings from a queue of results (it ignores the filters): the next new request takes
        the next result. Each run asks for its own digest, so it takes the findings queued for it."""
        from moto.inspector2.models import inspector2_backends

        inspector2_backends[ACCOUNT][REGION].findings_queue.append(findings)

    def lambda_environment(self, logical_id: str) -> dict[str, str]:
        """What Lambda sets for the function: the template's variables, region, credentials; plus the endpoint."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_LAMBDA_FUNCTION_NAME": self.function_names[logical_id],
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_ENDPOINT_URL": self.endpoint,
            **self.environments[logical_id],
        }


# --- the layers as Lambda mounts them ----------------------------------------------------------------------------


def _copy_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=False)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _top_level_entries(names: list[str]) -> list[Path]:
    entries: dict[str, Path] = {}
    for name in names:
        distribution = metadata.distribution(name)
        for file in distribution.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith(".data") or top in entries:
                continue
            source = Path(str(distribution.locate_file(top)))
            if source.exists():
                entries[top] = source
    return list(entries.values())


@dataclass(frozen=True)
class Layout:
    """The sys.path a Lambda function of this project sees: function code, shared layer, dependency layer,
    runtime boto3."""

    shared: Path
    deps: Path
    runtime: Path
    python: str = sys.executable  # the interpreter that runs the function (and the bare script)


WITH_BYTECODE, NO_BYTECODE = "with bytecode", "without bytecode"


def _python_version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _installs_for(python: str) -> tuple[Path, Path]:
    """The dependency layer's and the runtime's distributions installed for another interpreter (pip --target: the
    same pins, that Python's wheels), so the functions can run on the runtime's Python (--python python3.13) while
    the bench, moto and the tools stay in this venv. Kept between runs, per Python version and pins."""
    requirements = ROOT / "layers" / "deps" / "requirements.txt"
    runtime_pins = [f"{name}=={metadata.version(name)}" for name in RUNTIME_DISTRIBUTIONS]
    key = hashlib.sha256((requirements.read_text(encoding="utf-8") + " ".join(runtime_pins)).encode()).hexdigest()
    cache = Path(tempfile.gettempdir()) / f"ecr-warden-bench-py{_python_version(python)}-{key[:12]}"
    deps, runtime = cache / "deps", cache / "runtime"
    pip = [python, "-m", "pip", "install", "-q", "--no-compile", "--no-deps", "--only-binary=:all:", "--target"]
    if not deps.is_dir():
        subprocess.run([*pip, str(deps), "-r", str(requirements)], check=True)
    if not runtime.is_dir():
        subprocess.run([*pip, str(runtime), *runtime_pins], check=True)
        subprocess.run([python, "-m", "compileall", "-q", "-j0", str(runtime)], check=True)  # as the runtime ships
    return deps, runtime


def _runtime(work: Path, python: str = sys.executable) -> Path:
    if python != sys.executable:
        return _installs_for(python)[1]
    runtime = work / "runtime"
    if runtime.is_dir():
        return runtime
    runtime.mkdir(parents=True)
    for source in _top_level_entries(list(RUNTIME_DISTRIBUTIONS)):
        (runtime / source.name).symlink_to(source)  # the runtime's own files, bytecode included
        if source.is_file():  # a single-module distribution (six): its bytecode is in the folder's __pycache__
            for compiled in source.parent.glob(f"__pycache__/{source.stem}.*.pyc"):
                (runtime / "__pycache__").mkdir(exist_ok=True)
                (runtime / "__pycache__" / compiled.name).symlink_to(compiled)
    return runtime


def build_layouts(
    work: Path,
    shared_source: Path,
    name: str = "",
    variants: tuple[str, ...] = (WITH_BYTECODE, NO_BYTECODE),
    python: str = sys.executable,
) -> dict[str, Layout]:
    """The shared layer (from shared_source) and the dependency layer, each with and without bytecode (`variants`);
    `name` prefixes the variants when several builds are compared. `python`: the interpreter the functions run on
    (its own installs of the dependencies and the runtime's boto3 when it is not this one)."""
    requirements = (ROOT / "layers" / "deps" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    deps = [line.split("==")[0].strip() for line in requirements if line.strip() and not line.startswith("#")]
    runtime = _runtime(work, python)
    if python == sys.executable:
        sources = _top_level_entries(deps)
    else:
        installed = _installs_for(python)[0].iterdir()
        sources = [entry for entry in installed if entry.name != "bin" and not entry.name.endswith(".dist-info")]
    layouts = {}
    for index, variant in enumerate(variants):
        folder = work / f"{name or 'layers'}-{index}"
        shared, dependencies = folder / "shared", folder / "deps"
        _copy_tree(shared_source / "ecr_warden", shared / "ecr_warden")
        for source in sources:
            _copy_tree(source, dependencies / source.name)
        if variant == WITH_BYTECODE:  # what layers/*/Makefile ship when the build machine has the target Python
            for layer in (shared, dependencies):
                subprocess.run(
                    [python, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash", layer],
                    check=True,
                )
        layouts[f"{name}: {variant}" if name else variant] = Layout(shared, dependencies, runtime, python)
    return layouts


# --- scenarios ---------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One run's input: the event, and the values that make it a first decision (a new image, a new decision).
    A bare run replays the handler's traced calls with these values in place of the traced run's."""

    event: dict[str, Any]
    values: dict[str, str]
    expect: Callable[[Any], bool]


def _envelope(name: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))
    event["id"] = str(uuid.uuid4())
    event["detail"].update(changes)
    return event


def gate_clean(aws: LocalAws, seed: str) -> Run:
    """A clean scan result of a new image: counts all 0, so the findings are not read (record_pass)."""
    digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    event = _envelope("inspector2-scan-clean.json", **{"image-digest": digest, "image-tags": [seed]})
    return Run(
        event,
        {"digest": digest, "short": digest[7:19], "tag": seed, "event": event["id"]},
        lambda result: isinstance(result, dict) and result.get("action") == "passed",
    )


def gate_critical(aws: LocalAws, seed: str) -> Run:
    """A new tagged image with CRITICAL findings (the tools' `critical` fixture) from Inspector: quarantined."""
    from ecr_warden_tools.local.images import image_manifest
    from ecr_warden_tools.local.scanner import Scanner, load_fixture

    manifest = image_manifest(seed)
    image = aws.client("ecr").put_image(repositoryName=REPOSITORY, imageManifest=manifest, imageTag=seed)
    digest = image["image"]["imageId"]["imageDigest"]
    scanner = Scanner(REGION, ACCOUNT)  # the local stack's scanner, for findings in Inspector's shape
    scanned = scanner.record(REPOSITORY, digest, [seed], "enhanced", load_fixture("critical"))
    aws.queue_findings([scanner.inspector_finding(scanned, item) for item in scanned.findings])
    counts = scanner.counts(scanned, omit_zero=False)
    event = _envelope(
        "inspector2-scan-critical.json",
        **{"image-digest": digest, "image-tags": [seed], "finding-severity-counts": counts},
    )
    return Run(
        event,
        {"manifest": manifest, "digest": digest, "short": digest[7:19], "tag": seed, "event": event["id"]},
        lambda result: isinstance(result, dict) and result.get("action") == "quarantined",
    )


def notifier(aws: LocalAws, seed: str) -> Run:
    """The sample `quarantined` decision about a new image: SNS, then one Slack message."""
    digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    fingerprint = hashlib.sha256(f"fp-{seed}".encode()).hexdigest()[:32]
    event = _envelope(
        "ecr-warden-decision-quarantined.json",
        digest=digest,
        decision_id=str(uuid.uuid4()),
        fingerprint=fingerprint,
        quarantine_tag=f"quarantined-{digest[7:19]}",
    )
    # A webhook's send slots are 1.2 s apart: every run starts with a free slot, as the first message would.
    aws.client("dynamodb").delete_item(
        TableName=aws.outputs["NotifyStateTableName"], Key={"key": {"S": "rate#default"}}
    )
    return Run(
        event,
        {
            "digest": digest,
            "short": digest[7:19],
            "fingerprint": fingerprint,
            "decision": event["detail"]["decision_id"],
            "event": event["id"],
        },
        lambda result: isinstance(result, dict) and result.get("result") == "notified",
    )


def admin_exempt_list(aws: LocalAws, seed: str) -> Run:
    """An operator's `exempt list` for one repository (aws lambda invoke): the admin function's read path."""
    event = {"action": "exempt", "operation": "list", "repository": REPOSITORY, "by": "bench@example.com"}
    return Run(event, {}, lambda result: isinstance(result, dict) and result.get("ok") is True)


def admin_report(aws: LocalAws, seed: str) -> Run:
    """An operator's `report` of one repository (its own, with one image, so every run reads the same)."""
    event = {"action": "report", "repository": REPORT_REPOSITORY, "by": "bench@example.com"}
    return Run(event, {}, lambda result: isinstance(result, dict) and result.get("ok") is True)


def settings_guard(aws: LocalAws, seed: str) -> Run:
    """CloudTrail's CreateRepository for a new repository created with ECR's defaults: the settings guard's
    first decision about it (the policy's desired settings applied, audited and announced)."""
    repository = f"bench/guard-{seed}"
    aws.client("ecr").create_repository(repositoryName=repository)
    event = json.loads(_substitute_text((ROOT / "events" / "cloudtrail-create-repository.json"), repository))
    event["id"] = str(uuid.uuid4())
    return Run(
        event,
        {"repository": repository, "event": event["id"]},
        lambda result: isinstance(result, dict) and result.get("result") in SETTINGS_GUARD_RESULTS,
    )


def _substitute_text(path: Path, repository: str) -> str:
    return path.read_text(encoding="utf-8").replace(REPOSITORY, repository)


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    function: str  # logical id in template.yaml
    code_dir: str  # under the functions folder
    prepare: Callable[[LocalAws, str], Run]
    posts_per_run: int = 0  # Slack webhook POSTs


SCENARIOS = (
    Scenario("clean", "gate: clean Inspector2 Scan", "ScanGateFunction", "scan_gate", gate_clean),
    Scenario("critical", "gate: CRITICAL Inspector2 Scan", "ScanGateFunction", "scan_gate", gate_critical),
    Scenario("notifier", "notifier: quarantined decision", "NotifierFunction", "notifier", notifier, 1),
    Scenario("guard", "settings guard: CreateRepository", "SettingsGuardFunction", "settings_guard", settings_guard),
    Scenario("exempt-list", "admin: exempt list", "AdminFunction", "admin", admin_exempt_list),
    Scenario("report", "admin: report of one repository", "AdminFunction", "admin", admin_report),
)

# --- running -----------------------------------------------------------------------------------------------------


def _substitute(node: Any, pairs: list[tuple[str, str]]) -> Any:
    if isinstance(node, str):
        for old, new in pairs:
            node = node.replace(old, new)
        return node
    if isinstance(node, list):
        return [_substitute(item, pairs) for item in node]
    if isinstance(node, dict):
        return {key: _substitute(value, pairs) for key, value in node.items()}
    return node


@dataclass
class Sample:
    ms: float
    cpu_ms: float
    import_ms: float | None
    rss_mib: float
    calls: list[Any] | None
    heap_mib: float | None = None  # the Python heap's peak (tracemalloc), traced runs only


@dataclass
class Trace:
    """The handler's calls in one traced run, and that run's values (replaced by each bare run's own)."""

    calls: list[Any]
    values: dict[str, str]
    slack_body: bytes | None
    heap_mib: float | None = None  # the traced run's Python heap peak (tracemalloc)

    def bare_script(self, run: Run) -> str:
        from botocore import xform_name

        pairs = sorted(
            ((old, run.values[name]) for name, old in self.values.items()),
            key=lambda pair: len(pair[0]),
            reverse=True,  # the whole digest before its short form, the manifest before anything in it
        )
        calls = [
            [service, xform_name(operation), _substitute(params, pairs), error]
            for service, operation, params, error in self.calls
        ]
        script = _BARE.format(calls=json.dumps(calls))
        if self.slack_body is not None:
            body = _substitute(self.slack_body.decode(), pairs).encode()
            script += _BARE_SLACK.format(body=body)
        return script + _BARE_END

    @property
    def operations(self) -> list[str]:
        return [f"{service}:{operation}" for service, operation, _params, _error in self.calls]


# Ablation (--preload): the first build's handler with parts of its cold start loaded before the clock starts, to
# see what each part weighs in the ratio. (label, code run before the clock; each includes the one before.) The
# first step loads the standard library modules the bare script loads too (boto3 and urllib3 import
# importlib.metadata, email, http.client, ssl, ...): whichever side imports them first pays for them, so without
# this step the next one would count them as pydantic's.
_PYDANTIC = "from pydantic import BaseModel as _Base\nclass _First(_Base):\n    x: int\n"
_POWERTOOLS = _PYDANTIC + "from aws_lambda_powertools import Logger as _Logger, Metrics as _Metrics\n"
_PRELOAD_STEPS = (
    ("stdlib the bare script loads too", ""),
    ("+ pydantic and one model", _PYDANTIC),
    ("+ Powertools Logger/Metrics", _POWERTOOLS),
    ("+ boto3", _POWERTOOLS + "import boto3 as _boto3\n"),
)
# The standard library modules a bare boto3 script has loaded once its clients exist (printed by a fresh process).
_BARE_STDLIB = """\
import sys, sysconfig
sys.path[:0] = {paths!r}
import boto3, urllib.request
for _service in ("ssm", "dynamodb"):
    boto3.client(_service, region_name="us-east-1")
_stdlib = sysconfig.get_paths()["stdlib"]
print(" ".join(sorted(
    name for name, module in sys.modules.items()
    if name in sys.builtin_module_names or (getattr(module, "__file__", None) or "").startswith(_stdlib)
)))
"""


def preloads(layout: Layout) -> tuple[tuple[str, str], ...]:
    """The ablation's steps for this layout's Python: (label, code run before the clock starts)."""
    done = subprocess.run(
        [layout.python, "-I", "-S", "-B", "-c", _BARE_STDLIB.format(paths=[str(layout.runtime)])],
        capture_output=True,
        text=True,
        check=True,
    )
    stdlib = "import importlib as _importlib\n" + "".join(
        f"_importlib.import_module({name!r})\n" for name in done.stdout.split() if name != "__main__"
    )
    return tuple((label, stdlib + code) for label, code in _PRELOAD_STEPS)


class ColdStartBench:
    def __init__(self, aws: LocalAws, layouts: dict[str, Layout], functions: Path, preload: bool = False) -> None:
        self.aws, self.layouts, self.functions = aws, layouts, functions
        self._runs = 0
        # variant -> (the layout it runs on, code run before the clock starts)
        self.variants = {variant: (variant, "") for variant in layouts}
        if preload:
            first = next(iter(layouts))
            self.variants |= {label: (first, code) for label, code in preloads(layouts[first])}

    def _seed(self) -> str:
        self._runs += 1
        return f"bench-{self._runs}-{uuid.uuid4().hex[:12]}"

    def _handler_script(self, scenario: Scenario, run: Run) -> str:
        return _HANDLER.format(
            code_dir=str(self.functions / scenario.code_dir),
            function_name=self.aws.function_names[scenario.function],
            region=REGION,
            account=ACCOUNT,
            request_id=str(uuid.uuid4()),
            event=json.dumps(run.event),
        )

    def once(
        self, scenario: Scenario, variant: str, trace: Trace | None = None, traced: bool = False
    ) -> tuple[Sample, Run]:
        run = scenario.prepare(self.aws, self._seed())
        if variant == "bare":
            assert trace is not None
            layout = next(iter(self.layouts.values()))
            paths, body = [str(layout.runtime)], trace.bare_script(run)
            preloaded = ""
        else:
            base, preloaded = self.variants[variant]
            layout = self.layouts[base]
            paths, body = (
                [str(layout.shared), str(layout.deps), str(layout.runtime)],
                self._handler_script(scenario, run),
            )
        script = _PROLOGUE.format(paths=paths, trace=(_TRACE if traced else "") + preloaded) + body + _EPILOGUE
        posts = self.aws.webhook_posts
        # -I -S: no site-packages, only the sys.path above; -B: nothing compiled at run time is kept (/opt is
        # read-only on Lambda).
        done = subprocess.run(
            [layout.python, "-I", "-S", "-B", "-c", script],
            capture_output=True,
            text=True,
            env=self.aws.lambda_environment(scenario.function),
            timeout=120,
            check=False,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"{scenario.name} [{variant}] failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        data = json.loads(lines[-1].removeprefix("BENCH "))
        ok = data["result"] == "ok" if variant == "bare" else run.expect(data["result"])
        if not ok:
            raise RuntimeError(
                f"{scenario.name} [{variant}] took another path: {data['result']}\n{done.stdout[-2000:]}"
            )
        if self.aws.webhook_posts - posts != scenario.posts_per_run:
            raise RuntimeError(f"{scenario.name} [{variant}]: {self.aws.webhook_posts - posts} webhook POSTs")
        heap = data.get("heap_peak_kib")
        sample = Sample(
            data["ms"],
            data["cpu_ms"],
            data["import_ms"],
            data["maxrss_kib"] / 1024,
            data["calls"],
            heap / 1024 if heap is not None else None,
        )
        return sample, run

    def trace(self, scenario: Scenario, variant: str) -> Trace:
        sample, run = self.once(scenario, variant, traced=True)
        assert sample.calls is not None
        return Trace(sample.calls, run.values, _Webhook.last_body if scenario.posts_per_run else None, sample.heap_mib)

    def measure(self, scenario: Scenario, runs: int) -> dict[str, Any]:
        variants = tuple(self.variants)
        trace = self.trace(scenario, variants[0])
        # Every variant and the bare script must make the same calls, or the comparison means nothing.
        traces = {variants[0]: trace} | {variant: self.trace(scenario, variant) for variant in variants[1:]}
        operations = {variant: traced.operations for variant, traced in traces.items() if variant != variants[0]}
        bare_traced = self.once(scenario, "bare", trace, traced=True)[0]
        bare_calls = bare_traced.calls or []
        operations["bare"] = [f"{service}:{operation}" for service, operation, _params, _error in bare_calls]
        order = (*variants, "bare")
        for variant in order:  # warm-up: the OS file cache, moto's lazily built backends
            self.once(scenario, variant, trace)
        samples: dict[str, list[Sample]] = {variant: [] for variant in order}
        for round_ in range(runs):  # interleaved, so machine noise hits every variant alike
            # and each round starts one place further on: no variant always runs first, or right after the bare
            # script (a fixed order tilted a same-run comparison by up to 0.2x)
            shift = round_ % len(order)
            for variant in order[shift:] + order[:shift]:
                samples[variant].append(self.once(scenario, variant, trace)[0])
        result: dict[str, Any] = {
            "scenario": scenario.name,
            "operations": trace.operations,
            "same_calls": all(ops == trace.operations for ops in operations.values()),
            "variants": {},
        }
        if not result["same_calls"]:
            result["differing_calls"] = {v: ops for v, ops in operations.items() if ops != trace.operations}
        for variant, taken in samples.items():
            imports = [s.import_ms for s in taken if s.import_ms is not None]
            result["variants"][variant] = {
                "ms": round(statistics.median(s.ms for s in taken), 1),
                "cpu_ms": round(statistics.median(s.cpu_ms for s in taken), 1),
                "import_ms": round(statistics.median(imports), 1) if imports else None,
                "rss_mib": round(statistics.median(s.rss_mib for s in taken), 1),
            }
        result["bare"] = bare = result["variants"].pop("bare")
        bare["heap_mib"] = round(bare_traced.heap_mib or 0.0, 1)
        for variant in variants:
            row = result["variants"][variant]
            # Each run against the bare run of its own round, then the median: a slow spell of the machine
            # hits both sides of a pair, where it would tilt one median against the other.
            pairs = list(zip(samples[variant], samples["bare"], strict=True))
            row["ratio"] = round(statistics.median(h.ms / b.ms for h, b in pairs), 2)
            row["cpu_ratio"] = round(statistics.median(h.cpu_ms / b.cpu_ms for h, b in pairs), 2)
            row["rss_ratio"] = round(row["rss_mib"] / bare["rss_mib"], 2)
            row["heap_mib"] = round(traces[variant].heap_mib or 0.0, 1)
            row["heap_ratio"] = round(row["heap_mib"] / bare["heap_mib"], 2) if bare["heap_mib"] else None
        return result


# What single costs weigh, each in a fresh process with the Lambda-like sys.path (the with-bytecode layers): setup
# (not timed), then the timed statement. The rows behind each optimization in docs/PERFORMANCE.md.
_MODEL = (
    "import pydantic; from pydantic import BaseModel, Field\nclass _Warm(BaseModel):\n    x: int = Field(1, alias='y')"
)
_NO_SLACK_INIT = (
    "import importlib.util\n"
    "for _name in ('slack_sdk', 'slack_sdk.web'):  # the packages without running their __init__ (WebClient)\n"
    "    sys.modules[_name] = importlib.util.module_from_spec(importlib.util.find_spec(_name))"
)
# (what, setup, timed statement, whether the layers' bytecode matters)
COSTS = (
    (
        "slack_sdk.webhook (imported by the notifier's first Slack post)",
        "import logging, json, ssl, urllib.request",
        "import slack_sdk.webhook",
        True,
    ),
    (
        "  of it: asyncio (slack_sdk.web.internal_utils imports it)",
        "import logging, json, ssl",
        "import asyncio",
        False,
    ),
    (
        "  without slack_sdk's and slack_sdk.web's __init__ (no WebClient)",
        "import logging, json, ssl, urllib.request\n" + _NO_SLACK_INIT,
        "import slack_sdk.webhook.client",
        True,
    ),
    (
        "Powertools' EventBridgeModel (its parser package)",
        "import aws_lambda_powertools\n" + _MODEL,
        "from aws_lambda_powertools.utilities.parser.models.event_bridge import EventBridgeModel",
        True,
    ),
    ("ecr_warden.contracts.envelope (ours)", _MODEL, "import ecr_warden.contracts.envelope", True),
    (
        "an SSM client on a boto3 session of its own (Powertools' default)",
        "import boto3; boto3.client('dynamodb')",
        "boto3.session.Session().client('ssm')",
        False,
    ),
    (
        "an SSM client on the default session (the client factory's)",
        "import boto3; boto3.client('dynamodb')",
        "boto3.client('ssm')",
        False,
    ),
)
_COST = """\
import sys, time
sys.path[:0] = {paths!r}
{setup}
_t0 = time.perf_counter()
{statement}
print((time.perf_counter() - _t0) * 1000)
"""


def import_costs(layouts: dict[str, Layout], runs: int) -> list[tuple[str, float, float | None]]:
    """(what, median ms with bytecode, median ms without bytecode, or None where the layers play no part)."""
    results: list[tuple[str, float, float | None]] = []
    for label, setup, statement, layered in COSTS:
        medians: list[float | None] = []
        for variant in (WITH_BYTECODE, NO_BYTECODE) if layered else (WITH_BYTECODE,):
            layout = layouts[variant]
            code = _COST.format(
                paths=[str(layout.shared), str(layout.deps), str(layout.runtime)], setup=setup, statement=statement
            )
            env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": REGION}
            taken = [
                float(
                    subprocess.run(
                        [layout.python, "-I", "-S", "-B", "-c", code],
                        capture_output=True,
                        text=True,
                        env=env,
                        check=True,
                    ).stdout
                )
                for _ in range(runs)
            ]
            medians.append(round(statistics.median(taken), 1))
        results.append((label, medians[0] or 0.0, medians[1] if layered else None))
    return results


def cold_start(  # noqa: PLR0913  # the bench's knobs, all with defaults
    runs: int = RUNS,
    scenarios: tuple[Scenario, ...] = SCENARIOS,
    costs: bool = True,
    builds: dict[str, Path] | None = None,
    functions: Path | None = None,
    variants: tuple[str, ...] = (WITH_BYTECODE, NO_BYTECODE),
    preload: bool = False,
    python: str = sys.executable,
) -> tuple[list[dict[str, Any]], list[tuple[str, float, float | None]]]:
    """The cold start table (every scenario, with and without bytecode in the layers) and the single costs.
    `builds`: the layers/shared folders to measure, by name (default: this checkout's); several are measured in
    the same interleaved runs, to compare before and after a change. `python`: the interpreter the functions and
    the bare script run on (default: this one; `python3.13` is what Lambda runs)."""
    builds = builds or {"": ROOT / "layers" / "shared"}
    aws = LocalAws().start()
    try:
        with tempfile.TemporaryDirectory(prefix="ecr-warden-bench-") as work:
            layouts: dict[str, Layout] = {}
            for label, folder in builds.items():
                layouts |= build_layouts(Path(work), folder, label, variants, python)
            bench = ColdStartBench(aws, layouts, functions or ROOT / "functions", preload)
            results = [bench.measure(scenario, runs) for scenario in scenarios]
            complete = len(builds) == 1 and len(variants) == 2  # the single costs compare both layer builds
            return results, import_costs(layouts, runs) if costs and complete else []
    finally:
        aws.stop()


def print_table(results: list[dict[str, Any]]) -> None:
    """One row per function scenario and layer build: wall time of import + first invocation against the bare
    script's (the target), the same for CPU time (steadier on a busy machine), peak RSS, and the Python heap's
    peak (tracemalloc, from the traced run: Python objects only, not pydantic-core's or OpenSSL's own memory)."""
    width = max(len(variant) for result in results for variant in result["variants"])
    print(
        f"  {'function: scenario':<32} {'layers':<{width}} {'import':>6} {'total':>6} {'bare':>6} {'ratio':>6} "
        f"{'target':>8} {'':<6} {'CPU ratio':>9} {'peak RSS':>8} {'bare':>7} {'ratio':>6} "
        f"{'py heap':>8} {'bare':>7} {'ratio':>6}"
    )
    for result in results:
        bare = result["bare"]
        for index, (variant, row) in enumerate(result["variants"].items()):
            met = "ok" if row["ratio"] <= TARGET_RATIO else "MISSED"
            print(
                f"  {result['scenario'] if index == 0 else '':<32} {variant:<{width}} "
                f"{row['import_ms']:>4.0f}ms {row['ms']:>4.0f}ms {bare['ms']:>4.0f}ms {row['ratio']:>5.2f}x "
                f"{'<= ' + str(TARGET_RATIO) + 'x':>8} {met:<6} {row['cpu_ratio']:>8.2f}x "
                f"{row['rss_mib']:>5.1f}MiB {bare['rss_mib']:>4.1f}MiB {row['rss_ratio']:>5.2f}x "
                f"{row['heap_mib']:>5.1f}MiB {bare['heap_mib']:>4.1f}MiB {row['heap_ratio'] or 0:>5.2f}x"
            )
        same = "the bare script made the same calls" if result["same_calls"] else "THE CALLS DIFFER"
        print(f"  {'':<32} {len(result['operations'])} AWS calls ({same}): {' '.join(result['operations'])}")
        for variant, operations in (result.get("differing_calls") or {}).items():
            print(f"  {'':<32} {variant} made: {' '.join(operations)}")


def print_costs(costs: list[tuple[str, float, float | None]], runs: int = RUNS) -> None:
    if costs:
        print(f"\n  {f'single costs (fresh process, median of {runs})':<72} {'bytecode':>9} {'none':>8}")
    for label, compiled, source in costs:
        print(f"  {label:<72} {compiled:>7.1f}ms {f'{source:.1f}ms' if source is not None else '':>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS, help=f"measured runs of each variant (default {RUNS})")
    parser.add_argument("--shared", type=Path, help="the layers/shared folder to measure (default: this checkout)")
    parser.add_argument("--functions", type=Path, help="the functions folder to measure (default: this checkout)")
    parser.add_argument("--scenario", choices=[s.key for s in SCENARIOS], action="append", help="default: all")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument("--no-costs", action="store_true", help="skip the single import costs")
    parser.add_argument(
        "--compare",
        metavar="NAME=DIR",
        action="append",
        default=[],
        help="another layers/shared build to measure in the same runs (before/after a change); repeatable",
    )
    parser.add_argument("--name", help="with --compare: what to call the build measured by default (--shared)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter the functions and the bare script run on, e.g. python3.13 as on Lambda (default: this "
        "one); the dependencies and the runtime's boto3 are then installed for it with its pip, at the same pins",
    )
    parser.add_argument(
        "--preload",
        action="store_true",
        help="ablation: also run the first build with pydantic, then Powertools, then boto3 loaded before the clock",
    )
    parser.add_argument(
        "--bytecode",
        choices=("both", "with", "without"),
        default="both",
        help="the layer builds to measure: with bytecode (python3.13 at build time), without, or both (default)",
    )
    args = parser.parse_args()
    python = shutil.which(args.python) or args.python
    print(f"  functions and bare script on Python {_python_version(python)} ({python})")
    chosen = tuple(s for s in SCENARIOS if s.key in (args.scenario or [s.key]))
    started = time.monotonic()
    builds = {"" if not args.compare else args.name or "this": args.shared or ROOT / "layers" / "shared"}
    builds |= {label: Path(folder) for label, folder in (item.split("=", 1) for item in args.compare)}
    variants = {"both": (WITH_BYTECODE, NO_BYTECODE), "with": (WITH_BYTECODE,), "without": (NO_BYTECODE,)}
    results, costs = cold_start(
        args.runs, chosen, not args.no_costs, builds, args.functions, variants[args.bytecode], args.preload, python
    )
    print_table(results)
    print_costs(costs, args.runs)
    if args.json:
        print(json.dumps({"cold_start": results, "costs": costs}, indent=2))
    print(f"  ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
