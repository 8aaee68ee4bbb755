# Switchboard: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test test-unit test-integration lint browser broker-start broker-stop clean chaos bench

$(STAMP): pyproject.toml
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
	  echo "Java 17+ and Maven are needed for the local Kafka broker (apt-get install openjdk-17-jre-headless maven)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,bench]"
	@touch $@

setup: $(STAMP)  ## virtualenv with the project and its tools, Kafka jars from Maven Central
	@bash deploy/kafka/kafka.sh fetch

demo: setup  ## the whole pipeline on the embedded broker, with a live progress display and a summary
	$(BIN)/switchboard demo

test: setup lint browser  ## every test: unit, integration (real broker) and end to end
	$(BIN)/python -m pytest

test-unit: setup
	$(BIN)/python -m pytest tests/unit

test-integration: setup browser
	$(BIN)/python -m pytest tests/integration tests/e2e

CHAOS_EVENTS ?= 100000
chaos: setup  ## fault-injection scenarios (tests/chaos), each printing its counts; scenario 1 with CHAOS_EVENTS events
	SWITCHBOARD_CHAOS_EVENTS=$(CHAOS_EVENTS) $(BIN)/python -m pytest tests/chaos -m chaos

browser:  ## Debian's chromium + chromedriver, for the preference centre's browser test
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)"; exit 1; }; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "installing chromium and chromium-driver with $${SUDO:-root} apt-get"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }

bench: setup  ## the pipeline's figures (B vs P, latency at 50/80 % of P, memory, py-spy profile): printed, never asserted
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: setup  ## package layering: schemas <- streams <- connectors; adapters never import faust
	$(BIN)/lint-imports

broker-start: setup
	@bash deploy/kafka/kafka.sh start

broker-stop:
	@bash deploy/kafka/kafka.sh stop

clean:
	-@bash deploy/kafka/kafka.sh stop
	rm -rf $(VENV) .switchboard .kafka .pytest_cache .hypothesis
