/* SHAKE-256 (FIPS 202) in plain JavaScript, for the browser generator.
 *
 * WebCrypto has no SHAKE, and the certified generator passgeni-shake256-v1
 * (docs/generator.md) reads a SHAKE-256 stream. Keccak-f[1600] on 64-bit lanes
 * held as BigInt; the round constants and rotation offsets are computed from
 * their definitions in FIPS 202 (the LFSR rc(t) and the (x, y) walk of rho),
 * not typed in. Tested against Python's hashlib.shake_256 in real Chromium
 * (tests/integration/passgeni_authority/test_generator_page.py).
 *
 *   PassGeni.shake256(bytes)          -> an XOF: .read(n) returns the next n bytes
 *   PassGeni.shake256Digest(bytes, n) -> the first n output bytes
 */
(function (root) {
  "use strict";
  const MASK = (1n << 64n) - 1n;
  const RATE = 136; // bytes: 1600 - 2 * 256 bits

  function rcBit(t) {
    if (t % 255 === 0) return 1;
    let r = 1;
    for (let i = 1; i <= t % 255; i++) {
      r <<= 1;
      if (r & 0x100) r ^= 0x171;
    }
    return r & 1;
  }

  const RC = [];
  for (let round = 0; round < 24; round++) {
    let c = 0n;
    for (let j = 0; j < 7; j++) {
      if (rcBit(j + 7 * round)) c |= 1n << BigInt((1 << j) - 1);
    }
    RC.push(c);
  }

  const ROT = new Array(25).fill(0n);
  {
    let x = 1, y = 0;
    for (let t = 0; t < 24; t++) {
      ROT[x + 5 * y] = BigInt((((t + 1) * (t + 2)) / 2) % 64);
      const nx = y, ny = (2 * x + 3 * y) % 5;
      x = nx; y = ny;
    }
  }

  function rotl(v, n) {
    return n === 0n ? v : ((v << n) | (v >> (64n - n))) & MASK;
  }

  function keccakF(a) {
    const c = new Array(5), b = new Array(25);
    for (let round = 0; round < 24; round++) {
      for (let x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
      for (let x = 0; x < 5; x++) {
        const d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1n);
        for (let y = 0; y < 25; y += 5) a[x + y] ^= d;
      }
      for (let x = 0; x < 5; x++) {
        for (let y = 0; y < 5; y++) {
          b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], ROT[x + 5 * y]);
        }
      }
      for (let y = 0; y < 25; y += 5) {
        for (let x = 0; x < 5; x++) {
          a[x + y] = b[x + y] ^ (~b[((x + 1) % 5) + y] & MASK & b[((x + 2) % 5) + y]);
        }
      }
      a[0] ^= RC[round];
    }
  }

  function xorBlock(state, block) {
    for (let lane = 0; lane < RATE / 8; lane++) {
      let v = 0n;
      for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(block[lane * 8 + i]);
      state[lane] ^= v;
    }
  }

  function shake256(data) {
    const input = data instanceof Uint8Array ? data : new Uint8Array(data);
    const state = new Array(25).fill(0n);
    const full = input.length - (input.length % RATE);
    for (let off = 0; off < full; off += RATE) {
      xorBlock(state, input.subarray(off, off + RATE));
      keccakF(state);
    }
    const last = new Uint8Array(RATE);
    last.set(input.subarray(full));
    last[input.length - full] ^= 0x1f; // SHAKE domain bits and the first padding bit
    last[RATE - 1] ^= 0x80;
    xorBlock(state, last);
    keccakF(state);

    let out = new Uint8Array(0);
    let pos = 0;
    function squeeze() {
      const block = new Uint8Array(RATE);
      for (let lane = 0; lane < RATE / 8; lane++) {
        let v = state[lane];
        for (let i = 0; i < 8; i++) {
          block[lane * 8 + i] = Number(v & 0xffn);
          v >>= 8n;
        }
      }
      keccakF(state);
      return block;
    }
    return {
      read(n) {
        while (out.length - pos < n) {
          const block = squeeze();
          const grown = new Uint8Array(out.length - pos + RATE);
          grown.set(out.subarray(pos));
          grown.set(block, out.length - pos);
          out = grown;
          pos = 0;
        }
        const chunk = out.slice(pos, pos + n);
        pos += n;
        return chunk;
      },
    };
  }

  const ns = (root.PassGeni = root.PassGeni || {});
  ns.shake256 = shake256;
  ns.shake256Digest = (data, n) => shake256(data).read(n);
})(typeof globalThis !== "undefined" ? globalThis : this);
