# vcdext — every command a developer needs. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
PYTEST_ARGS ?=

.PHONY: help install run run-mqtt test unit integration bench lint clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

install: $(STAMP)  ## create .venv with vcdext, every plugin (editable) and the dev tools

# Reinstalls only when a pyproject.toml changed; otherwise `make install` is instant.
$(STAMP): pyproject.toml $(PLUGIN_PROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-e '.[dev]' $(foreach p,$(dir $(PLUGIN_PROJECTS)),-e ./$(p))
	touch $@

run: install  ## the local vCD cell plus every plugin, no vCD or broker needed
	$(BIN)/vcdext dev

run-mqtt: install  ## the same over MQTT: a throwaway RabbitMQ node serves MQTT over WebSocket
	bash tests/support/install-rabbitmq.sh
	$(BIN)/python -m tests.support.rabbitmq $(BIN)/vcdext dev --transport mqtt --mqtt-url '{mqtt_url}'

test: install  ## the whole suite: unit tests and real-RabbitMQ integration tests
	bash tests/support/install-rabbitmq.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: install  ## unit tests only (no broker)
	$(BIN)/python -m pytest -m 'not integration' $(PYTEST_ARGS)

bench: install  ## throughput benchmarks against a bare kombu baseline (real RabbitMQ)
	bash tests/support/install-rabbitmq.sh
	$(BIN)/python -m tests.bench

.PHONY: chaos
chaos: install  ## the chaos suite (hostile messages, broker kills, overload) and its table
	bash tests/support/install-rabbitmq.sh
	$(BIN)/python -m pytest tests/chaos -q -p no:cacheprovider $(PYTEST_ARGS)

lint: install  ## ruff, mypy and the import layers (import-linter, see pyproject.toml)
	$(BIN)/ruff check core plugins tests
	$(BIN)/ruff format --check core plugins tests
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
