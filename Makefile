# The few commands a newcomer needs. `make help` lists them.
VENV := .venv/bin
.DEFAULT_GOAL := help

.PHONY: help setup run test lint check bench bench-quick stack-up stack-down

help: ## Show this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

setup: ## Install system packages (if root), the Python env and the dev tools
	@scripts/bootstrap.sh

run: setup ## The main job: stack up, the engine's processes, and a demo feed of events
	$(VENV)/loyalty demo

test: setup ## Everything CI checks: lint, types, import contracts, tests on the real stack
	$(VENV)/loyalty stack up
	$(MAKE) --no-print-directory lint
	$(VENV)/pytest

lint: ## ruff (lint + format), mypy (strict on the rule core), import-linter
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	$(VENV)/lint-imports

check: test ## Alias of test

bench: setup ## Every benchmark, its same-run baseline and target verdict (~1 h)
	$(VENV)/loyalty bench

bench-quick: setup ## The same at small sizes: the report's shape, not its figures (~3 min)
	$(VENV)/loyalty bench --quick

stack-up: setup ## Start the local Kafka + Postgres (idempotent)
	$(VENV)/loyalty stack up

stack-down: ## Stop what stack-up started
	$(VENV)/loyalty stack down
