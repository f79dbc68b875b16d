#!/usr/bin/env bash
# Step 1 of the PassGeni provision action: make `python -m passgeni_core.cli` available.
# Inputs (environment): INPUT_PYTHON, INPUT_INSTALL ('self', 'none' or a pip requirement), ACTION_PATH.
set -euo pipefail
python="${INPUT_PYTHON:-python3}"
install="${INPUT_INSTALL:-self}"
case "$install" in
  none) ;;
  self)
    # The action's directory is .github/actions/provision inside the PassGeni repository.
    root="$(cd "$ACTION_PATH/../../.." && pwd)"
    "$python" -m pip install --quiet --disable-pip-version-check "${root}[vault,aws,k8s]"
    ;;
  *) "$python" -m pip install --quiet --disable-pip-version-check "$install" ;;
esac
if ! "$python" -c 'import passgeni_core.cli' 2>/dev/null; then
  echo "::error title=PassGeni provision::PassGeni is not importable by $python (install: $install)"
  exit 1
fi
