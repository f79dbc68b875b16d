#!/usr/bin/env bash
# Run `ansible-test sanity` on the passgeni.compliance collection.
#
# ansible-test only runs from a tree laid out as .../ansible_collections/NAMESPACE/NAME that is
# a git repository (it lists files with git). This script keeps such a tree under build/
# (ignored by git), syncs ansible_collection/ into it, commits there when something changed,
# pre-seeds the pip bootstrap script ansible-test would otherwise download from a host that is
# unreachable here (see /work/shared/ENVIRONMENT.md), and runs the sanity tests for Python 3.11
# with the local interpreter. Idempotent; after the first run (~80 s, sanity requirements are
# installed into ~/.ansible/test) a re-run takes a few seconds.
#
# Environment: VENV (default .venv), SANITY_ROOT (default build/ansible-sanity),
# SANITY_PYTHON (default 3.11). Extra arguments go to `ansible-test sanity`
# (for example --test validate-modules).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo/.venv}"
case "$venv" in /*) ;; *) venv="$repo/$venv" ;; esac
root="${SANITY_ROOT:-$repo/build/ansible-sanity}"
python_version="${SANITY_PYTHON:-3.11}"
tree="$root/ansible_collections/passgeni/compliance"
ansible_test="$venv/bin/ansible-test"

if [[ ! -x "$ansible_test" ]]; then
    echo "ansible-sanity: $ansible_test not found (run make venv; ansible-core comes with passgeni[ansible])" >&2
    exit 2
fi

# 1. The collection tree: a copy of ansible_collection/ (without generated output), committed.
mkdir -p "$tree"
# Remove what is not in the source any more (keep .git and ansible-test's output), then copy.
find "$tree" -mindepth 1 \( -path "$tree/.git" -o -path "$tree/tests/output" \) -prune \
    -o -type f -print0 | xargs -0 -r rm -f
find "$tree" -mindepth 1 -depth -type d -empty \
    -not -path "$tree/.git*" -not -path "$tree/tests/output*" -delete
tar -C "$repo/ansible_collection" \
    --exclude './tests/output' --exclude '__pycache__' --exclude '*.pyc' --exclude '*.tar.gz' \
    -cf - . | tar -C "$tree" -xf -
(
    cd "$tree"
    export GIT_AUTHOR_NAME=ansible-sanity GIT_AUTHOR_EMAIL=sanity@localhost
    export GIT_COMMITTER_NAME=ansible-sanity GIT_COMMITTER_EMAIL=sanity@localhost
    if [[ ! -d .git ]]; then
        git init -q
    fi
    printf '/tests/output/\n' > .git/info/exclude
    git add -A
    if ! git diff --cached --quiet || ! git rev-parse -q --verify HEAD >/dev/null; then
        git commit -q --allow-empty -m "sanity snapshot $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    fi
)

# 2. The pip bootstrap script ansible-test downloads into its cache: a local equivalent that
#    uses ensurepip, then installs the packages ansible-test asked for.
pip_version="$("$venv/bin/python" - <<'EOF'
import pathlib, re
import ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
match = re.search(r"pip='([0-9.]+)'", source.read_text())
print(match.group(1) if match else "24.2")
EOF
)"
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
bootstrap='"""Offline stand-in for get-pip.py (written by scripts/ansible-sanity.sh)."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
'
if [[ ! -f "$cache" ]] || [[ "$(cat "$cache")" != "$(printf '%s\n' "$bootstrap")" ]]; then
    printf '%s\n' "$bootstrap" > "$cache"
fi

# 3. The sanity tests.
cd "$tree"
export PATH="$venv/bin:$PATH"
export ANSIBLE_TEST_PREFER_PODMAN=0
exec "$ansible_test" sanity --python "$python_version" --local --color no "$@"
