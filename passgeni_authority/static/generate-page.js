/* The generator page (/generate, /generate/certified). No library; nothing is stored.
 * Zero-knowledge mode makes no request at all (its CSP has connect-src 'none').
 * Certified mode sends only the parameters, the seed commitment and the caller's API key to
 * this authority (same origin), and checks the answers as the CLI does
 * (passgeni_core/workflows/_answers.py) before showing anything. */
(function () {
  "use strict";
  const P = window.PassGeni;
  const table = JSON.parse(document.getElementById("passgeni-table").textContent);
  const gen = P.makeGenerator(table, P.breachWords || []);
  P.page = gen; // for tests and the curious: the same generator the form uses
  const certified = document.body.dataset.mode === "certified";
  const root = document.body.dataset.root || "";
  const $ = (id) => document.getElementById(id);
  const form = $("generator");

  function fail(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  function clearResult() {
    $("error").hidden = true;
    $("result").hidden = true;
    $("password").textContent = "";
    $("copied").textContent = "";
    if (certified) $("seed").textContent = "";
  }

  function currentParams() {
    const text = $("length").value.trim();
    const length = text === "" ? undefined : Number(text);
    return gen.forPreset($("preset").value, {
      length,
      exclude: $("exclude").value,
      exclude_lookalikes: $("lookalikes").checked,
    });
  }

  function describe(params) {
    const e = gen.entropy(params);
    const met = gen.standardsMet(params);
    // FIPS 140-3 is about the entropy source; here only the parameters are known to meet it.
    const shown = met.map((id) =>
      id === "fips-140-3" ? "fips-140-3 (by its parameters: this browser's random source is not known to be FIPS-validated)" : id,
    );
    return {
      e,
      met,
      text:
        `${params.length} characters, pool of ${e.pool_size}: ${e.entropy_bits.toFixed(2)} bits exact entropy ` +
        `(naive ${e.naive_entropy_bits.toFixed(2)}); meets ${shown.join(", ")}.`,
    };
  }

  function refresh() {
    const preset = gen.presetById($("preset").value);
    $("length").min = String(preset.min_length);
    try {
      $("facts").textContent = describe(currentParams()).text;
    } catch (err) {
      $("facts").textContent = err.message;
    }
  }

  $("preset").addEventListener("change", () => {
    $("length").value = String(gen.presetById($("preset").value).default_length);
    refresh();
  });
  for (const id of ["length", "exclude", "lookalikes"]) $(id).addEventListener("input", refresh);
  $("length").value = String(gen.presetById($("preset").value).default_length);
  refresh();

  async function copy(id, button) {
    const text = $(id).textContent;
    try {
      await navigator.clipboard.writeText(text);
    } catch (_err) {
      const range = document.createRange();
      range.selectNodeContents($(id));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      document.execCommand("copy");
      sel.removeAllRanges();
    }
    $("copied").textContent = button === "copy" ? "Password copied." : "Seed copied.";
  }
  $("copy").addEventListener("click", () => copy("password", "copy"));
  if (certified) $("copy-seed").addEventListener("click", () => copy("seed", "copy-seed"));

  async function api(path, key, body) {
    const answer = await fetch(root + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + key },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    let data = null;
    try {
      data = await answer.json();
    } catch (_err) {
      throw new Error(`the authority answered ${answer.status} without JSON`);
    }
    if (!answer.ok) throw new Error(`${data.code || answer.status}: ${data.message || "refused"}`);
    return data;
  }

  function tokenPayload(token) {
    const part = token.split(".")[1];
    return JSON.parse(new TextDecoder().decode(P.fromB64url(part)));
  }

  async function certify(params, described) {
    if (!window.isSecureContext || !crypto.subtle) {
      throw new Error(
        "certified mode needs a secure context (HTTPS, or localhost): the API key would cross the network in clear",
      );
    }
    const key = $("api-key").value.trim();
    if (!key) throw new Error("enter an API key to ask for a certificate");
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const commitment = await gen.seedCommitment(seed);
    const session = await api("/api/generate", key, {
      compliance_standard: $("preset").value,
      parameters: params,
      seed_commitment: commitment,
    });
    // The CLI's checks of the session (check_session): same parameters, same entropy.
    if (P.canonicalJson(session.parameters) !== P.canonicalJson(params)) {
      throw new Error("the authority's generation session states different parameters; not certified");
    }
    if (Math.abs(session.entropy_bits - described.e.entropy_bits) > 1e-9) {
      throw new Error(`the authority computed ${session.entropy_bits} bits of entropy, not ${described.e.entropy_bits}; not certified`);
    }
    if (session.generator !== "passgeni-shake256-v1" || !session.authority_nonce) {
      throw new Error("the authority did not offer passgeni-shake256-v1; not certified");
    }
    const nonce = P.fromB64url(session.authority_nonce);
    const password = gen.derivePassword(params, seed, nonce);
    const body = { generation_session_id: session.generation_session_id };
    const label = $("label").value.trim();
    if (label) body.label = label;
    const system = $("target-system").value.trim();
    const path = $("target-path").value.trim();
    if (system || path) body.target = { system, path };
    const issued = await api("/api/generate-certificate", key, body);
    // What the certificate states must be what was done here (check_claims).
    const claims = tokenPayload(issued.token);
    const proof = claims.generation || {};
    if (P.canonicalJson(claims.parameters) !== P.canonicalJson(params)) {
      throw new Error(`certificate ${issued.cert_id} states different generation parameters; not accepted`);
    }
    if (proof.generator !== "passgeni-shake256-v1" || proof.seed_commitment !== commitment || proof.nonce !== session.authority_nonce) {
      throw new Error(`certificate ${issued.cert_id} states a different generation proof; not accepted`);
    }
    if (gen.derivePassword(claims.parameters, seed, P.fromB64url(proof.nonce)) !== password) {
      throw new Error(`certificate ${issued.cert_id} does not re-derive the password; not accepted`);
    }
    return { password, seed, issued };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearResult();
    $("generate").disabled = true;
    try {
      const params = currentParams();
      const described = describe(params);
      let password;
      let certifiedStandards = "";
      if (certified) {
        const done = await certify(params, described);
        password = done.password;
        certifiedStandards = done.issued.standards_met.join(", ");
        $("seed").textContent = P.b64url(done.seed);
        // An embedded authority's cert URL names its issuer, no address: link where it is served.
        const served = /^https?:\/\//.test(done.issued.cert_url);
        $("cert-url").textContent = done.issued.cert_url;
        $("cert-url").href = served
          ? done.issued.cert_url
          : `${root}/cert/${encodeURIComponent(done.issued.cert_id)}`;
        $("cert-checks").textContent =
          `Checked here: the certificate states these parameters, this seed commitment and nonce, ` +
          `and re-derives the password. Standards: ${done.issued.standards_met.join(", ")}.`;
      } else {
        password = gen.generateLocal(params);
      }
      $("password").textContent = password;
      $("result-facts").textContent = certified
        ? described.text.replace(/; meets .*$/, "; the certificate lists: " + certifiedStandards + ".")
        : described.text;
      $("result").hidden = false;
      $("password").focus?.();
    } catch (err) {
      fail(err.message);
    } finally {
      $("generate").disabled = false;
    }
  });
})();
