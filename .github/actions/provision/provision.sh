#!/usr/bin/env bash
# Step 2 of the PassGeni provision action: generate, certify and store one credential.
# Inputs (environment): INPUT_STORE, INPUT_PRESET, INPUT_ROTATE, INPUT_LABEL, INPUT_PYTHON,
# PASSGENI_URL, PASSGENI_API_KEY, PASSGENI_ISSUER; the store's own credentials the usual way
# (VAULT_ADDR/VAULT_TOKEN, the AWS SDK chain, kubeconfig). Outputs go to $GITHUB_OUTPUT.
#
# The password never reaches the log or the outputs: provision runs without --show-password
# (its JSON holds references only), its JSON goes to a private file read for five public
# fields, and the API key is masked in case it did not come from a secret.
set -euo pipefail
python="${INPUT_PYTHON:-python3}"
: "${INPUT_STORE:?the store input is required}" "${INPUT_PRESET:?the preset input is required}"
: "${PASSGENI_URL:?the authority-url input is required}"
: "${PASSGENI_API_KEY:?the api-key input is required}"
: "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set: run this as a GitHub Actions step}"
echo "::add-mask::${PASSGENI_API_KEY}"
if [ -z "${PASSGENI_ISSUER:-}" ]; then unset PASSGENI_ISSUER; fi

args=(provision --preset "$INPUT_PRESET" --store "$INPUT_STORE" --json)
case "${INPUT_ROTATE:-false}" in
  true) args+=(--rotate) ;;
  false | "") ;;
  *) echo "::error title=PassGeni provision::rotate must be 'true' or 'false'"; exit 2 ;;
esac
if [ -n "${INPUT_LABEL:-}" ]; then args+=(--label "$INPUT_LABEL"); fi

private="$(mktemp -d)"
trap 'rm -rf "$private"' EXIT
chmod 700 "$private"
status=0
"$python" -m passgeni_core.cli "${args[@]}" > "$private/result.json" || status=$?
if [ "$status" -ne 0 ]; then
  # The CLI's one-line reason is already on stderr (no secret is ever in it).
  echo "::error title=PassGeni provision::provision failed (exit $status) for $INPUT_STORE"
  exit "$status"
fi
"$python" - "$private/result.json" >> "$GITHUB_OUTPUT" <<'PY'
import json, sys
result = json.load(open(sys.argv[1], encoding="utf-8"))
fields = {
    "cert_id": result["cert_id"],
    "cert_url": result["cert_url"],
    "compliance_standard": result["compliance_standard"],
    "expires_at": result["expires_at"],
    "store_version": result["version"],
    "outcome": result["outcome"],
}
for name, value in fields.items():
    text = "" if value is None else str(value)
    if "\n" in text or "\r" in text:
        raise SystemExit(f"output {name} is not one line")
    print(f"{name}={text}")
PY
cert_url="$(grep '^cert_url=' "$GITHUB_OUTPUT" | tail -n 1 | cut -d= -f2-)"
echo "PassGeni: $INPUT_STORE certified for $INPUT_PRESET: $cert_url"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '### PassGeni\n\n`%s` certified (%s): %s\n' "$INPUT_STORE" "$INPUT_PRESET" "$cert_url" >> "$GITHUB_STEP_SUMMARY"
fi
