# Developer entry points. `make demo` and `make test` are the two commands the README promises a newcomer.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: demo test lint validate checkov build bench bench-org local clean lock

$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements-dev.lock -e ".[dev]"
	touch $@

# SAM CLI pins its own boto3/pydantic ranges, so it lives in a venv of its own.
$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check "aws-sam-cli==$(SAM_CLI_VERSION)"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/ecr-warden demo

local: $(STAMP)
	$(VENV)/bin/ecr-warden local

test: $(STAMP) $(SAM_STAMP)
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

validate: $(SAM_STAMP)
	$(SAM_VENV)/bin/sam validate --lint
	$(SAM_VENV)/bin/sam validate --lint --template member.yaml

# Security scan of the template. Each skipped check carries its reason in the resource's Metadata.
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"
	touch $@

checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --file member.yaml --framework cloudformation --compact --quiet --skip-download

build: $(SAM_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam build

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run.py

# A sweep run over 100 accounts x 5 regions on the local stack (about 15 minutes). The issue's 100 repositories a
# registry outgrow moto: its TransactWriteItems deep-copies the whole table per item (docs/PERFORMANCE.md).
bench-org: $(STAMP)
	$(VENV)/bin/python benchmarks/org_sweep.py --accounts 100 --regions 5 --repositories 10

# Regenerate the pinned dev dependency set after changing pyproject.toml.
lock: $(STAMP)
	$(VENV)/bin/pip freeze --exclude-editable | grep -v '^ecr-warden' > requirements-dev.lock

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
