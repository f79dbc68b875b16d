"""Driving ``wrk`` for the authority benchmark: the Lua scripts and what a run measured.

Each script prints one ``BENCH_JSON`` line that :func:`run_wrk` parses; the
authority's scripts read ``BENCH_API_KEY``, ``BENCH_PRESET``, ``BENCH_BATCH`` and
``BENCH_COMMITMENT`` (a seed commitment) from the environment, OpenBao's ``BENCH_TOKEN`` and
``BENCH_INPUT``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LUA_BATCH",
    "LUA_OPENBAO",
    "LUA_TWO_STEP",
    "Result",
    "combine",
    "median_result",
    "run_wrk",
    "summarise",
]

# Shared by every script: counters per thread, summed in done() and printed as one
# JSON line the runner parses. ``certs`` counts certificates in 2xx answers.
LUA_COMMON = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

non2xx = 0
certs = 0
first_error = ""

-- The first failure's status and error code, so a run with errors says which.
function remember(status, body)
  if first_error == "" then
    local code = string.match(body or "", '"code":"([%w_]+)"') or "?"
    first_error = status .. " " .. code
  end
end

-- Occurrences of a literal string: plain find (memchr/memcmp in C), no copy of
-- the body. string.gsub would build a second ~150 KB string per batch answer,
-- and the load generator's CPU is taken from the 2 cores the servers share.
function count(body, literal)
  local n, at = 0, 1
  while true do
    local s, e = string.find(body, literal, at, true)
    if not s then return n end
    n = n + 1
    at = e + 1
  end
end

function done(summary, latency, requests)
  local n, c, first = 0, 0, ""
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
    c = c + t:get("certs")
    if first == "" then first = t:get("first_error") or "" end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"certs":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"first_error":"%s"}\n',
    summary.requests, summary.duration, n, c,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    first))
end
"""

LUA_OPENBAO = (
    LUA_COMMON
    + r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Vault-Token"] = os.getenv("BENCH_TOKEN")
wrk.body = '{"input":"' .. os.getenv("BENCH_INPUT") ..
  '","hash_algorithm":"sha2-256","marshaling_algorithm":"jws"}'

function response(status, headers, body)
  if status >= 200 and status < 300 then
    certs = certs + 1
  else
    non2xx = non2xx + 1; remember(status, body)
  end
end
"""
)

# Two-step flow. wrk's Lua API has no per-connection state, so the thread keeps
# a queue: an answer to /api/generate pushes its session id; the next request
# (on whichever connection is free) redeems a queued session if there is one,
# else opens a new one. Every certificate is still generate -> redeem.
LUA_TWO_STEP = (
    LUA_COMMON
    + r"""
local auth = "Bearer " .. os.getenv("BENCH_API_KEY")
local gen_body = '{"compliance_standard":"' .. os.getenv("BENCH_PRESET") ..
  '","seed_commitment":"' .. os.getenv("BENCH_COMMITMENT") .. '"}'
local queue = {}
local head, tail = 1, 0
local hdrs = {["Content-Type"] = "application/json", ["Authorization"] = auth}

function request()
  if head <= tail then
    local sid = queue[head]
    queue[head] = nil
    head = head + 1
    return wrk.format("POST", "/api/generate-certificate", hdrs,
      '{"generation_session_id":"' .. sid .. '"}')
  end
  return wrk.format("POST", "/api/generate", hdrs, gen_body)
end

function response(status, headers, body)
  if status == 201 then
    certs = certs + 1
  elseif status == 200 then
    local sid = string.match(body, '"generation_session_id":"([^"]+)"')
    if sid then
      tail = tail + 1
      queue[tail] = sid
    else
      non2xx = non2xx + 1; remember(status, body)
    end
  else
    non2xx = non2xx + 1; remember(status, body)
  end
end
"""
)

# Batch flow: /api/generate-batch (N sessions) then /api/generate-certificates
# with those N, queued the same way.
LUA_BATCH = (
    LUA_COMMON
    + r"""
local auth = "Bearer " .. os.getenv("BENCH_API_KEY")
local n = tonumber(os.getenv("BENCH_BATCH"))
local commitments = {}
for i = 1, n do commitments[i] = '"' .. os.getenv("BENCH_COMMITMENT") .. '"' end
local gen_body = '{"compliance_standard":"' .. os.getenv("BENCH_PRESET") ..
  '","count":' .. n .. ',"seed_commitments":[' .. table.concat(commitments, ",") .. ']}'
local queue = {}
local head, tail = 1, 0
local hdrs = {["Content-Type"] = "application/json", ["Authorization"] = auth}

function request()
  if head <= tail then
    local ids = queue[head]
    queue[head] = nil
    head = head + 1
    local items = {}
    for i, sid in ipairs(ids) do
      items[i] = '{"generation_session_id":"' .. sid .. '"}'
    end
    return wrk.format("POST", "/api/generate-certificates", hdrs,
      '{"items":[' .. table.concat(items, ",") .. ']}')
  end
  return wrk.format("POST", "/api/generate-batch", hdrs, gen_body)
end

function response(status, headers, body)
  if status == 201 then
    local k = count(body, '"cert_id":')
    local bad = count(body, '"error":')
    certs = certs + k
    non2xx = non2xx + bad
    if bad > 0 then remember(status, body) end
  elseif status == 200 then
    local ids = {}
    local list = string.match(body, '"generation_session_ids":%[(.-)%]') or ""
    for sid in string.gmatch(list, '"([^"]+)"') do
      table.insert(ids, sid)
    end
    if #ids > 0 then
      tail = tail + 1
      queue[tail] = ids
    else
      non2xx = non2xx + 1; remember(status, body)
    end
  else
    non2xx = non2xx + 1; remember(status, body)
  end
end
"""
)


@dataclass
class Result:
    name: str
    backend: str
    certs_per_s: float
    requests_per_s: float
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio_to_openbao: float | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def run_wrk(
    url: str,
    lua: str,
    *,
    env: dict[str, str],
    duration: int,
    connections: int,
    threads: int,
    workdir: Path,
    name: str,
) -> dict[str, Any]:
    script = workdir / f"{name}.lua"
    script.write_text(lua)
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            data["raw"] = proc.stdout
            return data
    raise RuntimeError(f"wrk printed no summary:\n{proc.stdout}\n{proc.stderr}")


def summarise(name: str, backend: str, data: dict[str, Any], notes: str = "") -> Result:
    seconds = data["duration_us"] / 1e6
    return Result(
        name=name,
        backend=backend,
        certs_per_s=data["certs"] / seconds,
        requests_per_s=data["requests"] / seconds,
        requests=data["requests"],
        duration_s=round(seconds, 2),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["non2xx"] + data["socket_errors"],
        notes=notes,
        extra={"first_error": data["first_error"]} if data.get("first_error") else {},
    )


def combine(name: str, backend: str, parts: list[dict[str, Any]], notes: str) -> Result:
    """Several wrk runs at once (one per authority process): sum rates, worst latencies."""
    seconds = max(p["duration_us"] for p in parts) / 1e6
    return Result(
        name=name,
        backend=backend,
        certs_per_s=sum(p["certs"] for p in parts) / seconds,
        requests_per_s=sum(p["requests"] for p in parts) / seconds,
        requests=sum(p["requests"] for p in parts),
        duration_s=round(seconds, 2),
        p50_ms=max(p["p50_us"] for p in parts) / 1000,
        p99_ms=max(p["p99_us"] for p in parts) / 1000,
        errors=sum(p["non2xx"] + p["socket_errors"] for p in parts),
        notes=notes,
        extra={"first_error": first}
        if (first := next((p["first_error"] for p in parts if p.get("first_error")), ""))
        else {},
    )


def median_result(runs: list[Result], ratios: list[float] | None = None) -> Result:
    """The run with the median rate, with every run's rate (and ratio) kept in ``extra``."""
    ordered = sorted(runs, key=lambda r: r.certs_per_s)
    mid = ordered[len(ordered) // 2]
    out = Result(**{**asdict(mid), "extra": dict(mid.extra)})
    out.extra["rounds"] = [round(r.certs_per_s) for r in runs]
    if ratios is not None:
        out.extra["round_ratios"] = [round(x, 3) for x in ratios]
        out.ratio_to_openbao = round(statistics.median(ratios), 3)
    return out
