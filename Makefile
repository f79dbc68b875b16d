# The README's two commands: `make demo` and `make test`. Both work on a fresh
# machine with only Python 3.11 and the package registries.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck contracts unit integration reliability venv clean bench sysdeps sanity

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[all,test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the integration and reliability tiers drive for real (a headless
# browser, the wrk load generator); `make unit` needs none of them and no root.
sysdeps:
	@bash scripts/install-sysdeps.sh

demo: $(STAMP)
	$(PY) examples/demo.py $(if $(KEEP),--keep)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check passgeni_core passgeni_authority vault_plugin_helper k8s_operator_hooks terraform_external tests bench examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy passgeni_core passgeni_authority vault_plugin_helper k8s_operator_hooks terraform_external

contracts: $(STAMP)
	$(VENV)/bin/lint-imports

# The test tiers (docs/testing.md). pytest exits non-zero when it collects nothing
# (exit code 5), so a tier that lost its tests fails instead of looking green.
PYTEST := $(VENV)/bin/pytest -q -p no:cacheprovider

# No servers of any kind, no root, no Debian packages: under a minute.
unit: $(STAMP)
	$(PYTEST) tests/unit

# Real OpenBao, moto, PostgreSQL, kmock, Chromium, served authorities, ansible, terraform.
integration: $(STAMP) sysdeps
	$(PYTEST) tests/integration

# Load and kill -9, store faults, hostile input, secret leaks.
reliability: $(STAMP) sysdeps
	$(PYTEST) tests/reliability

# ansible-test sanity on the passgeni.compliance collection (a temporary
# ansible_collections/passgeni/compliance tree under build/; see the script).
sanity: $(STAMP)
	VENV=$(VENV) bash scripts/ansible-sanity.sh

test: lint typecheck contracts sanity unit integration reliability

bench: $(STAMP) sysdeps
	@bash scripts/install-bench-deps.sh
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
