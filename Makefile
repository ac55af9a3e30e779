# safebench: `make demo` and `make test` work on a fresh clone (they create .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint unit hil clean tls-tools bench

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml tools/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . -e tools
	@touch $(STAMP)

demo: venv
	$(BIN)/safebench demo

lint: venv
	$(BIN)/ruff check .

test: lint tls-tools
	$(BIN)/python -m pytest -q

# TLS servers the interop tests run (Debian openssl, gnutls-bin): installed once, only when missing and
# apt can run (CI runs as root); otherwise the tests that need gnutls-serv say they were skipped.
tls-tools:
	@command -v openssl >/dev/null && command -v gnutls-serv >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl gnutls-bin >/dev/null; \
	  else echo "note: install Debian openssl and gnutls-bin for the TLS interop tests"; fi; }

hil: venv tls-tools
	$(BIN)/python -m pytest -q hil_tests

# The benchmark suite (docs/benchmarks.md): the table on stdout, .bench/results.json and .bench/results.md.
# BENCH_ARGS="--update-baseline" rewrites tools/benchmarks/baseline.json; "--no-heap --no-scale" is quick.
bench: venv
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .bench build
