# safebench: `make demo` and `make test` work on a fresh clone (they create .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LAB_VENV := .venv-lab
LAB_STAMP := $(LAB_VENV)/.installed

.PHONY: venv lab-venv demo dashboard test lint unit hil hil-emulated clean peers bench rp2040js

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml tools/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . -e tools
	@touch $(STAMP)

# The lab's labgrid (docs/lab.md) in a venv of its own: it brings a fork of pyserial that would replace the rig's.
lab-venv: $(LAB_STAMP)

$(LAB_STAMP): host/safebench/lab/requirements.txt
	@test -x $(LAB_VENV)/bin/python || $(PYTHON) -m venv $(LAB_VENV)
	$(LAB_VENV)/bin/python -m pip install -q --disable-pip-version-check -r host/safebench/lab/requirements.txt
	@touch $(LAB_STAMP)

demo: venv
	$(BIN)/safebench demo

# The live demonstrator page (docs/dashboard.md): simulated boards publishing through Mosquitto into the ingest,
# the page on http://127.0.0.1:8080/ until Ctrl-C.
dashboard: venv peers
	$(BIN)/safebench dashboard --demo --boards 3

lint: venv
	$(BIN)/ruff check .

# The emulated Picos' sessions run beside the rest, their output shown when both are done; the exit status is the
# worse of the two. The rest mostly waits on its boards, servers and timeouts (~0.45 of a core alone), so it runs
# in 3 workers (pytest-xdist), a test file per worker (its module fixtures and order kept).
MAIN_WORKERS ?= 3
test: lint peers rp2040js lab-venv
	@mkdir -p .bench; $(MAKE) --no-print-directory hil-emulated > .bench/hil-emulated.log 2>&1 & emulated=$$!; \
	$(BIN)/python -m pytest -q -n $(MAIN_WORKERS) --dist loadfile; main=$$?; \
	wait $$emulated; emulated_rc=$$?; \
	echo "---- the HIL suite on emulated Picos (.bench/hil-emulated.log) ----"; cat .bench/hil-emulated.log; \
	[ $$main = 0 ] && [ $$emulated_rc = 0 ]

# The HIL suite on emulated Picos (docs/hardware.md §1.5), one session per MicroPython image, side by side, each in
# its own temporary folder: only where the images are (CI seeds them: .ci/run). The emulator runs a Pico at about
# a tenth of real speed (a TLS handshake costs a core a minute), so within the 20-minute budget of `make test` the
# suite is shared out: every image runs HIL_CORE (boot, deploy, the SIM, signed readings, the protocol), and each
# test file beyond it runs on one image (HIL_SHARE_<release>; test_emulated_shares.py checks that every file of
# hil_tests/ has its place). With one image in EMU_IMAGES it runs the whole suite. Each session's output follows
# the other's; the exit status is the worse. test_mqtt.py comes last: Mosquitto drops a client that has not sent
# CONNECT 90 s after it connected, and an emulated handshake is slowest while the main suite runs beside it.
EMU_IMAGES ?= 1.28.0 1.22.0
HIL_CORE = hil_tests/test_board.py hil_tests/test_sign.py hil_tests/test_sim_operations.py hil_tests/test_readings.py \
  hil_tests/test_protocol_errors.py
HIL_SHARE_1.28.0 = hil_tests/test_tls.py hil_tests/test_faults.py hil_tests/test_card_profiles.py hil_tests/test_small_heap.py \
  hil_tests/test_enrolment.py
HIL_SHARE_1.22.0 = hil_tests/test_modem_dialects.py hil_tests/test_operator_profile.py hil_tests/test_sim_binding.py \
  hil_tests/test_mqtt.py
emu_tests = $(if $(filter 1,$(words $(EMU_IMAGES))),hil_tests,$(HIL_CORE) $(HIL_SHARE_$(1)))
hil-emulated: venv peers rp2040js
	@if $(BIN)/python -c 'import sys; from safebench_simulator.rp2040 import images; sys.exit(not all(images.release_image(r) for r in "$(EMU_IMAGES)".split()))'; then \
	  mkdir -p .bench; pids=""; \
	  $(foreach r,$(EMU_IMAGES),tmp=$$(mktemp -d /tmp/safebench-hil-$(r).XXXXXX); \
	    ( $(BIN)/python -m pytest -q -p no:cacheprovider --basetemp $$tmp --durations 8 $(call emu_tests,$(r)) --emu-boards 1 \
	      --emu-firmware $(r) > .bench/hil-emulated-$(r).log 2>&1; rc=$$?; rm -rf $$tmp; exit $$rc ) & pids="$$pids $$!";) \
	  rc=0; for p in $$pids; do wait $$p || rc=1; done; \
	  $(foreach r,$(EMU_IMAGES),echo "-- MicroPython $(r) on an emulated Pico: $(call emu_tests,$(r)) (.bench/hil-emulated-$(r).log) --"; \
	    cat .bench/hil-emulated-$(r).log;) exit $$rc; \
	else echo "note: no RP2040 images $(EMU_IMAGES) in the images folder: the HIL suite on emulated Picos did not run (python -m safebench_simulator.rp2040.images fetch)"; fi

# The real peers the tests talk to, from Debian: TLS servers (openssl, gnutls-bin), the MQTT broker
# (mosquitto, in /usr/sbin), the ingest's PostgreSQL server (postgresql; the tests start their own), the
# browser of the page's tests (chromium, driven by Playwright), the enrolment server's HSM (softhsm2) and the
# serial-port server a labgrid exporter runs (ser2net).
# Installed once, only when missing and apt can run (CI runs as root); otherwise the tests that need them
# say they were skipped.
peers:
	@command -v openssl >/dev/null && command -v gnutls-serv >/dev/null && PATH="$$PATH:/usr/sbin" command -v mosquitto >/dev/null \
	  && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && command -v chromium >/dev/null \
	  && command -v softhsm2-util >/dev/null && PATH="$$PATH:/usr/sbin" command -v ser2net >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl gnutls-bin mosquitto postgresql chromium softhsm2 ser2net >/dev/null; \
	  else echo "note: install Debian openssl, gnutls-bin, mosquitto, postgresql, chromium, softhsm2 and ser2net for the TLS, MQTT, ingest, page, enrolment and lab tests"; fi; }

hil: venv peers rp2040js
	$(BIN)/python -m pytest -q hil_tests

# The emulated Pico (host/safebench_simulator/rp2040): Node.js from Debian when missing (as root with apt),
# then rp2040js at the version its package-lock.json pins, by `npm ci`, again only when the lock changed.
RP2040 := host/safebench_simulator/rp2040
RP2040_STAMP := $(RP2040)/node_modules/.installed

rp2040js: $(RP2040_STAMP)

$(RP2040_STAMP): $(RP2040)/package.json $(RP2040)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "note: install Debian nodejs and npm for the emulated Pico's tests"; fi; }
	@if command -v npm >/dev/null; then \
	  cd $(RP2040) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; fi

# The benchmark suite (docs/benchmarks.md): the table on stdout, .bench/results.json and .bench/results.md.
# BENCH_ARGS="--update-baseline" rewrites tools/benchmarks/baseline.json; "--no-heap --no-scale" is quick.
bench: venv rp2040js
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(LAB_VENV) .bench build $(RP2040)/node_modules
