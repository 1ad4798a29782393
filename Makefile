# scale-or-fail: the front door. Every target bootstraps .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp changes whenever pyproject.toml does, so `make` reinstalls after a pin change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
PYTEST_ARGS ?=

.PHONY: help setup test lint fmt package clean

help: ## List the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP) ## Create .venv and install the pinned dependencies

test: $(STAMP) ## Run the test suite (no AWS account needed)
	$(BIN)/pytest $(PYTEST_ARGS)

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

lint: $(STAMP) $(CHECKOV_VENV)/bin/checkov ## ruff (format + lint), mypy, checkov on terraform/
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; \
	  else echo "terraform not installed: skipping terraform fmt -check"; fi
	BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false $(CHECKOV_VENV)/bin/checkov --quiet --compact --framework terraform --download-external-modules false -d terraform

fmt: $(STAMP) ## Format Python (and Terraform when terraform is installed)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	@if command -v terraform >/dev/null; then terraform fmt -recursive terraform; fi

package: $(STAMP) ## Build the Lambda deployment zip (build/lambda.zip)
	$(BIN)/sof package

clean: ## Remove build outputs (keeps .venv)
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
