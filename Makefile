# StrideClip: `make demo` and `make test` set everything up on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test bench clean system-tools rig

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/strideclip demo

# System tools the tests drive: Debian's chromium for the page tests (Playwright never
# downloads a browser here), openscad to render the case and gcc-multilib for the clip's 32-bit
# test rig, mosquitto for the team's broker tests (its Debian service, if started, is not used:
# the tests run their own on a free port) and openssl for their TLS certificate. Installed with
# apt-get if missing.
APT_TOOLS := /usr/bin/chromium:chromium /usr/bin/openscad:openscad /usr/sbin/mosquitto:mosquitto \
	/usr/bin/openssl:openssl \
	/usr/include/x86_64-linux-gnu/gnu/stubs-32.h:gcc-multilib
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

system-tools:
	@missing="$$(for t in $(APT_TOOLS); do test -e "$${t%%:*}" || echo "$${t#*:}"; done)"; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null; then \
			$(SUDO) apt-get install -y -q $$missing >/dev/null 2>&1 || \
			{ $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $$missing >/dev/null; } || \
			echo "could not install $$missing: the tests that need them will be skipped"; \
		else echo "no apt-get: $$missing not installed, the tests that need them will be skipped"; fi; \
	fi

# The clip's test rig: MicroPython's 32-bit unix port with NimBLE and littlefs, built once from
# ../shared/vendor into build/rig (tests/rig/README.md).
rig: system-tools
	tools/build_rig.sh

test: $(STAMP) system-tools rig
	$(BIN)/python -m pytest -n 2 -q

# Benchmarks print figures; the peer comparison needs mobgap, so they get their own venv.
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) rig
	for b in bench/bench_*.py; do echo "== $$b"; $(BENCH_VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .hypothesis
