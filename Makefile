# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
IVR := $(VENV)/bin/ivr
PY := $(VENV)/bin/python
# Debian packages the project needs on the host (Asterisk itself lives in its own sid root;
# podman and runc build and run the container stack in tests/test_packaging.py).
DEB_PACKAGES := debootstrap ffmpeg lame sox espeak-ng baresip-core chromium chromium-driver wrk \
	podman runc fail2ban nftables sip-tester kamailio tcpdump

.PHONY: run test lint asterisk asterisk-down db prompts bench faults setup deps venv lock clean

run: setup asterisk db
	$(IVR) serve --banner

test: setup
	$(IVR) asterisk up
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check ivr tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

asterisk: setup
	$(IVR) asterisk up

asterisk-down: venv
	$(IVR) asterisk down

db: setup
	$(IVR) db up

# Benchmarks (bench/README.md): real SIP load against the engine and Asterisk alone, the API,
# event routing, media. Prints a table; JSON in bench/results/. About 20 minutes.
bench: setup
	$(PY) -m bench.run --more $(BENCH_ARGS)

# The fault run (bench/faults.py, docs/reliability.md): one fault at a time in a steady load of
# recording calls; prints a table, JSON in bench/results/. About 5 minutes.
faults: setup
	$(PY) -m bench.run --faults $(BENCH_ARGS)

# Regenerate the default prompt set's audio from prompts/*/prompts.tsv (deterministic output).
prompts: venv
	$(PY) -m ivr.media.prompts build

setup: deps venv .env

# Install missing Debian packages (we are root on these machines; elsewhere use sudo).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@# Debian enables the system's Kamailio, on every address's port 5060 (Asterisk's): the
	@# project starts its own (`ivr proxy up`, docs/scale-out.md).
	@if command -v systemctl >/dev/null && systemctl is-enabled -q kamailio 2>/dev/null; then \
		systemctl disable -q kamailio; systemctl stop kamailio 2>/dev/null || true; fi

venv: $(VENV)/.installed

# The pinned versions of requirements.lock, then the project itself without resolving again, so
# every machine runs what the suite ran. pip check fails when pyproject.toml asks for more.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	$(VENV)/bin/pip check || { echo "requirements.lock is behind pyproject.toml: make lock"; exit 1; }
	touch $@

# Rewrite requirements.lock from pyproject.toml (dependencies and the dev extra), keeping every
# pin that still fits; `make lock LOCK_ARGS=--upgrade` moves all of them to the newest releases.
lock:
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	test -x $(VENV)/bin/pip-compile || $(VENV)/bin/pip install -q pip-tools
	$(VENV)/bin/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url \
		--no-emit-find-links $(LOCK_ARGS) --output-file requirements.lock pyproject.toml

.env:
	$(IVR) env init

clean:
	rm -rf $(VENV) .local var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
