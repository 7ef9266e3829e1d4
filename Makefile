# The two commands: `make run` serves on 127.0.0.1:8000, `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
# The CDK's jsii runtime on Node 20; deprecated CDK APIs fail the infra tests.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_DEPRECATED := fail

.PHONY: run test lint typecheck pytest install install-runtime checkov peer tools bench clean lambda-lock

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

# Two locks, one venv: requirements.lock is what serving needs (`make run`);
# requirements-dev.lock adds the tests, linters and the CDK (`make test`, `make
# install`) with the same pins (it is compiled with `-c requirements.lock`, see its
# header), so neither install changes the other's packages. Each stamp
# re-installs only when its inputs change.
$(VENV)/.installed-runtime: $(BIN)/uv requirements.lock pyproject.toml
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# The Lambda set's lock pins the same versions (`-c requirements.lock`) and adds what only
# Lambda has (snapshot-restore-py, SnapStart's hooks), which the tests of the handlers import.
$(VENV)/.installed: $(VENV)/.installed-runtime requirements-dev.lock requirements-lambda.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-lambda.lock
	touch $@

# The Lambda functions' own set (infra/lambda_asset.py bundles it): the `lambda` extra
# alone, not the project's dependencies (the server's), resolved for Lambda's Python
# and platform with the pins of requirements.lock. Run after changing either.
lambda-lock: $(BIN)/uv
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["lambda"], sep="\n")' \
		| $(BIN)/uv pip compile --quiet --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
			-c requirements.lock --custom-compile-command "make lambda-lock" - -o requirements-lambda.lock

install-runtime: $(VENV)/.installed-runtime
install: $(VENV)/.installed

# checkov pins its own boto3 and would downgrade ours: it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.lock $(BIN)/uv
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(BIN)/uv pip install --quiet --python $(CHECKOV_VENV)/bin/python -r requirements-checkov.lock
	touch $@

checkov: $(CHECKOV_VENV)/.installed

# The peer the signup benchmark starts beside our server (bench/signup_peers.py):
# pinax-referrals on Django and gunicorn, in a venv of its own. The venv ignores itself.
PEER_VENV := .venv-peer
$(PEER_VENV)/.installed: bench/peers/requirements.lock $(BIN)/uv
	$(PYTHON) -m venv $(PEER_VENV)
	echo '*' > $(PEER_VENV)/.gitignore
	$(BIN)/uv pip install --quiet --python $(PEER_VENV)/bin/python -r bench/peers/requirements.lock
	touch $@

peer: $(PEER_VENV)/.installed

# Debian's packages: wrk drives the HTTP benchmark (and its smoke test); chromium
# runs the browser tests (Playwright's own browser download is not used).
tools:
	@command -v wrk >/dev/null && command -v chromium >/dev/null \
		|| apt-get install -y -q wrk chromium >/dev/null \
		|| (apt-get update -q >/dev/null && apt-get install -y -q wrk chromium >/dev/null)

HOST ?= 127.0.0.1
PORT ?= 8000
run: install-runtime
	$(BIN)/referrals serve --host $(HOST) --port $(PORT)

test: install checkov peer tools lint typecheck pytest

lint: install
	$(BIN)/ruff check src tests bench infra
	$(BIN)/ruff format --check src tests bench infra

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

bench: install peer tools
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(PEER_VENV) .mypy_cache .pytest_cache .ruff_cache
