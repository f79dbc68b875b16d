/* The core's generator in the browser: passgeni_core/model/_generator.py, _entropy.py,
 * _derive.py and the preset checks of _params.py, ported line by line.
 *
 * Nothing here touches the network. The same sampler serves both modes:
 *   - zero-knowledge: the byte stream is crypto.getRandomValues (uniform, as os.urandom);
 *   - certified: the stream is SHAKE-256(b"passgeni generator v1\0" || seed || nonce || P),
 *     passgeni-shake256-v1 exactly as docs/generator.md specifies (test vectors checked
 *     in real Chromium against that document).
 * Exact entropy is counted with BigInt as the core counts it (breach-listed outputs
 * subtracted), so the figure shown is the core's.
 *
 *   const g = PassGeni.makeGenerator(table, breachWords)   // table: the page's preset JSON
 */
(function (root) {
  "use strict";
  const ns = (root.PassGeni = root.PassGeni || {});
  const CLASS_NAMES = ["upper", "lower", "digits", "special"];
  const MIN_ACCEPTANCE_PERCENT = 1n; // acceptance below 1 %: the exact sampler
  const STREAM_DOMAIN = new TextEncoder().encode("passgeni generator v1\0");
  const COMMITMENT_DOMAIN = new TextEncoder().encode("passgeni seed commitment v1\0");

  class GeneratorError extends Error {}

  function bitLength(n) {
    return n === 0n ? 0 : n.toString(2).length;
  }

  function comb(n, k) {
    if (k < 0 || k > n) return 0n;
    let r = 1n;
    for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
    return r;
  }

  /* log2 of a positive BigInt as CPython's math.log2(int) computes it. */
  function log2Big(n) {
    const bits = bitLength(n);
    if (bits <= 1000) return Math.log2(Number(n));
    const shift = bits - 64;
    return Math.log2(Number(n >> BigInt(shift)) / 2 ** 64) + (shift + 64);
  }

  /* Python's round(x, 2) for the values met here. */
  function round2(x) {
    return Number(x.toFixed(2));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /* json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=True) */
  function canonicalJson(value) {
    if (value === null || typeof value !== "object") {
      return JSON.stringify(value).replace(
        /[\u007f-\uffff]/g,
        (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
      );
    }
    if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => canonicalJson(k) + ":" + canonicalJson(value[k])).join(",") + "}";
  }

  function b64url(bytes) {
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(text) {
    const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }

  /* below(m): uniform on [0, m) from the byte stream (stream_below in _generator.py). */
  function streamBelow(read) {
    return function below(m) {
      const big = BigInt(m);
      const k = bitLength(big - 1n);
      if (k === 0) return 0n;
      const size = Math.ceil(k / 8);
      const mask = (1n << BigInt(k)) - 1n;
      for (;;) {
        let v = 0n;
        for (const b of read(size)) v = (v << 8n) | BigInt(b);
        v &= mask;
        if (v < big) return v;
      }
    };
  }

  /* tables[i][L][c] of _entropy.suffix_tables */
  function suffixTables(sizes, mins, n) {
    const k = sizes.length;
    const tables = new Array(k + 1);
    let last = Array.from({ length: n + 1 }, () => new Array(k + 1).fill(0n));
    last[0][0] = 1n;
    tables[k] = last;
    for (let i = k - 1; i >= 0; i--) {
      const size = BigInt(sizes[i]);
      const minimum = mins[i];
      const cur = Array.from({ length: n + 1 }, () => new Array(k + 1).fill(0n));
      for (let total = 0; total <= n; total++) {
        for (let kk = minimum; kk <= total; kk++) {
          const ways = comb(total, kk) * size ** BigInt(kk);
          const present = kk ? 1 : 0;
          const row = last[total - kk];
          const out = cur[total];
          for (let c = 0; c < k + 1 - present; c++) {
            if (row[c]) out[c + present] += ways * row[c];
          }
        }
      }
      tables[i] = cur;
      last = cur;
    }
    return tables;
  }

  function makeGenerator(table, breachWords) {
    const presets = table.presets;
    const defaultPool = table.default_pool;
    const lookalikes = table.lookalikes;
    const breach = new Set(breachWords || []);
    const byLength = new Map();
    for (const w of breach) {
      if (!byLength.has(w.length)) byLength.set(w.length, []);
      byLength.get(w.length).push(w);
    }

    function presetById(id) {
      const p = presets.find((q) => q.id === id);
      if (!p) throw new GeneratorError(`unknown preset ${id}`);
      return p;
    }

    function pool(params) {
      const excluded = new Set(params.exclude || "");
      if (params.exclude_lookalikes) for (const ch of lookalikes) excluded.add(ch);
      const classes = [];
      for (const name of CLASS_NAMES) {
        if (!params[name]) continue;
        const base =
          name === "special" && params.special_chars ? params.special_chars : defaultPool[name];
        let kept = "";
        for (const ch of base) if (!kept.includes(ch) && !excluded.has(ch)) kept += ch;
        if (kept) classes.push({ name, chars: kept });
      }
      return classes;
    }

    function admits(params, classes, password) {
      if (password.length !== params.length) return false;
      const counts = new Map(classes.map((c) => [c.name, 0]));
      for (const ch of password) {
        const cls = classes.find((c) => c.chars.includes(ch));
        if (!cls) return false;
        counts.set(cls.name, counts.get(cls.name) + 1);
      }
      for (const c of classes) if (counts.get(c.name) < params[`min_${c.name}`]) return false;
      return [...counts.values()].filter((v) => v).length >= params.min_classes_present;
    }

    function countCompositions(sizes, mins, n, r) {
      const t = suffixTables(sizes, mins, n)[0];
      let total = 0n;
      for (let c = r; c <= sizes.length; c++) total += t[n][c];
      return total;
    }

    function spec(params) {
      const classes = pool(params);
      return {
        classes,
        sizes: classes.map((c) => c.chars.length),
        mins: classes.map((c) => params[`min_${c.name}`]),
      };
    }

    function entropy(params) {
      const { classes, sizes, mins } = spec(params);
      let outcomes = countCompositions(sizes, mins, params.length, params.min_classes_present);
      if (params.breach_check) {
        for (const w of byLength.get(params.length) || []) {
          if (admits(params, classes, w)) outcomes -= 1n;
        }
      }
      const poolSize = sizes.reduce((a, b) => a + b, 0);
      return {
        entropy_bits: outcomes > 0n ? round2(log2Big(outcomes)) : 0,
        naive_entropy_bits: round2(params.length * Math.log2(poolSize)),
        pool_size: poolSize,
        outcomes: outcomes.toString(),
      };
    }

    /* The Sampler of _generator.py: one password from the byte stream `read`. */
    function sample(params, read) {
      const { classes, sizes, mins } = spec(params);
      const n = params.length;
      const alphabet = classes.map((c) => c.chars).join("");
      const size = alphabet.length;
      const limit = 256 - (256 % size);
      const minPresent = params.min_classes_present;
      const valid = countCompositions(sizes, mins, n, minPresent);
      const useExact = valid * 100n < MIN_ACCEPTANCE_PERCENT * BigInt(size) ** BigInt(n);
      const unconstrained = mins.every((m) => m === 0) && minPresent <= 1;
      const classOf = new Map();
      classes.forEach((c, i) => { for (const ch of c.chars) classOf.set(ch, i); });

      function ok(candidate) {
        if (unconstrained) return true;
        const counts = new Array(classes.length).fill(0);
        for (const ch of candidate) counts[classOf.get(ch)] += 1;
        let present = 0;
        for (let i = 0; i < classes.length; i++) {
          if (counts[i] < mins[i]) return false;
          if (counts[i]) present += 1;
        }
        return present >= minPresent;
      }

      function* rejection() {
        let chars = "";
        for (;;) {
          while (chars.length < n) {
            for (const b of read(256)) if (b < limit) chars += alphabet[b % size];
          }
          const candidate = chars.slice(0, n);
          chars = chars.slice(n);
          if (ok(candidate)) yield candidate;
        }
      }

      function* exact() {
        const below = streamBelow(read);
        const tables = suffixTables(sizes, mins, n);
        const k = sizes.length;
        for (;;) {
          let remaining = n, present = 0;
          const composition = [];
          for (let i = 0; i < k; i++) {
            const choices = [];
            for (let kk = mins[i]; kk <= remaining; kk++) {
              const need = Math.max(minPresent - present - (kk ? 1 : 0), 0);
              let tail = 0n;
              const row = tables[i + 1][remaining - kk];
              for (let c = need; c < row.length; c++) tail += row[c];
              const weight = comb(remaining, kk) * BigInt(sizes[i]) ** BigInt(kk) * tail;
              if (weight) choices.push([kk, weight]);
            }
            let pick = below(choices.reduce((s, [, w]) => s + w, 0n));
            let chosen = choices[choices.length - 1][0];
            for (const [candidate, weight] of choices) {
              if (pick < weight) { chosen = candidate; break; }
              pick -= weight;
            }
            composition.push(chosen);
            present += chosen ? 1 : 0;
            remaining -= chosen;
          }
          const labels = [];
          composition.forEach((kk, i) => { for (let j = 0; j < kk; j++) labels.push(i); });
          for (let j = labels.length - 1; j > 0; j--) {
            const r = Number(below(j + 1));
            [labels[j], labels[r]] = [labels[r], labels[j]];
          }
          yield labels.map((c) => classes[c].chars[Number(below(sizes[c]))]).join("");
        }
      }

      for (const text of useExact ? exact() : rejection()) {
        if (!params.breach_check || !breach.has(text)) return text;
      }
      throw new GeneratorError("unreachable");
    }

    function cryptoStream() {
      return (n) => crypto.getRandomValues(new Uint8Array(n));
    }

    function derivePassword(params, seed, nonce) {
      if (seed.length !== 32) throw new GeneratorError("a seed is 32 bytes");
      if (nonce.length !== 32) throw new GeneratorError("a nonce is 32 bytes");
      const p = new TextEncoder().encode(canonicalJson(params));
      const xof = ns.shake256(concat(STREAM_DOMAIN, seed, nonce, p));
      return sample(params, (k) => xof.read(k));
    }

    function shortfall(params, preset, fipsMode) {
      if (params.length < preset.min_length) return `length ${params.length} < ${preset.min_length}`;
      for (const name of preset.required_classes) {
        if (!(params[name] && params[`min_${name}`] >= 1)) return `${name} characters are not required`;
      }
      const required = CLASS_NAMES.filter((n) => params[n] && params[`min_${n}`] >= 1).length;
      if (Math.max(required, params.min_classes_present) < preset.min_classes_present) {
        return `fewer than ${preset.min_classes_present} character classes guaranteed`;
      }
      if (preset.breach_check && !params.breach_check) return "the breach-list check is disabled";
      const bits = entropy(params).entropy_bits;
      if (bits < preset.entropy_floor.bits) {
        return `exact entropy ${bits} bits is below the ${preset.id} floor of ${preset.entropy_floor.bits} bits`;
      }
      const classes = pool(params);
      for (const c of classes) {
        if (c.chars.length < preset.min_pool[c.name]) {
          return `${c.name} has ${c.chars.length} distinct character(s) after exclusions, below the ${preset.id} minimum of ${preset.min_pool[c.name]}`;
        }
      }
      const total = classes.reduce((s, c) => s + c.chars.length, 0);
      if (total < preset.min_pool.total) {
        return `the pool has ${total} distinct character(s) after exclusions, below the ${preset.id} minimum of ${preset.min_pool.total}`;
      }
      if (preset.min_entropy_bits && bits < preset.min_entropy_bits) {
        return `entropy below ${preset.min_entropy_bits} bits`;
      }
      if (preset.requires_fips_entropy && !fipsMode) return "the entropy source is not running in FIPS mode";
      return "";
    }

    /* Ids of every preset the parameters meet (standards_met, fips_strict=False). */
    function standardsMet(params, fipsMode = true) {
      return presets.filter((p) => shortfall(params, p, fipsMode) === "").map((p) => p.id);
    }

    /* GenerationParameters.for_preset(id, length=..., exclude=..., exclude_lookalikes=...) */
    function forPreset(id, { length, exclude = "", exclude_lookalikes = false } = {}) {
      const p = presetById(id);
      const want = length === undefined || length === null ? p.default_length : length;
      if (!Number.isInteger(want) || want < 1 || want > 256) {
        throw new GeneratorError("length must be between 1 and 256");
      }
      if (want < p.min_length) {
        throw new GeneratorError(`preset ${p.id} requires at least ${p.min_length} characters, length ${want} was requested`);
      }
      for (const ch of exclude) {
        const code = ch.charCodeAt(0);
        if (code < 0x21 || code > 0x7e) {
          throw new GeneratorError("exclude may hold only printable ASCII characters (no space)");
        }
      }
      const params = {
        length: want,
        upper: true, lower: true, digits: true, special: true,
        min_upper: 0, min_lower: 0, min_digits: 0, min_special: 0,
        min_classes_present: p.min_classes_present,
        special_chars: null,
        exclude,
        exclude_lookalikes,
        breach_check: true,
      };
      for (const name of p.required_classes) params[`min_${name}`] = 1;
      const classes = pool(params);
      for (const name of CLASS_NAMES) {
        if (!classes.find((c) => c.name === name)) {
          throw new GeneratorError(`preset ${p.id} cannot be met: every ${name} character is excluded; disable ${name} or exclude fewer characters`);
        }
      }
      const reason = shortfall(params, p, true);
      if (reason) throw new GeneratorError(`preset ${p.id} cannot be met with these parameters: ${reason}`);
      return params;
    }

    async function seedCommitment(seed) {
      const digest = await crypto.subtle.digest("SHA-256", concat(COMMITMENT_DOMAIN, seed));
      return b64url(new Uint8Array(digest));
    }

    return {
      pool,
      entropy,
      sample,
      derivePassword,
      generateLocal: (params) => sample(params, cryptoStream()),
      shortfall,
      standardsMet,
      forPreset,
      presetById,
      seedCommitment,
      presets,
    };
  }

  Object.assign(ns, { makeGenerator, canonicalJson, b64url, fromB64url, GeneratorError, CLASS_NAMES });
})(typeof globalThis !== "undefined" ? globalThis : this);
