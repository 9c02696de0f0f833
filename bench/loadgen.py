"""HTTP load generators: wrk with a Lua script when installed, else Python threads.

Both keep `connections` keep-alive connections busy for a fixed duration, POST the same body
with a unique Idempotency-Key per request, and report throughput and latency percentiles.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import percentile

# Each wrk thread numbers its own requests; the key is prefix-thread-counter.
WRK_SCRIPT = r"""
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  body = f:read("*a")
  f:close()
  prefix = args[3]
  counter = 0
  hdrs = {["Content-Type"] = "application/json"}
  if args[2] ~= "-" then hdrs["Authorization"] = "Bearer " .. args[2] end
end

function request()
  counter = counter + 1
  hdrs["Idempotency-Key"] = prefix .. "-" .. tid .. "-" .. counter
  return wrk.format("POST", nil, hdrs, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT {\"requests\": %d, \"duration_us\": %d, \"p50_us\": %d, \"p90_us\": %d, " ..
    "\"p99_us\": %d, " ..
    "\"max_us\": %d, \"mean_us\": %f, \"connect\": %d, \"read\": %d, \"write\": %d, " ..
    "\"status\": %d, \"timeout\": %d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    generator: str
    requests: int  # completed responses, errors included
    errors: int  # non-2xx responses and socket errors
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    p90_ms: float = float("nan")

    @property
    def throughput(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


def choose(preference: str) -> str:
    """`wrk` when asked for or available (auto), else `python`."""
    if preference == "python":
        return "python"
    if shutil.which("wrk"):
        return "wrk"
    if preference == "wrk":
        raise RuntimeError("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    return "python"


def describe(generator: str, connections: int) -> str:
    if generator == "wrk":
        version = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        name = version[0].split(" Copyright")[0] if version else "wrk"
        return f"{name}, {wrk_threads(connections)} threads, {connections} connections, Lua"
    return f"Python http.client, {connections} threads with a keep-alive connection each"


def wrk_threads(connections: int) -> int:
    return max(1, min(connections, os.cpu_count() or 1, 4))


def run_load(
    generator: str,
    url: str,
    body: bytes,
    token: str | None,
    key_prefix: str,
    seconds: float,
    connections: int,
    workdir: Path,
) -> LoadResult:
    if generator == "wrk":
        return _run_wrk(url, body, token, key_prefix, seconds, connections, workdir)
    return _run_python(url, body, token, key_prefix, seconds, connections)


def _run_wrk(
    url: str,
    body: bytes,
    token: str | None,
    key_prefix: str,
    seconds: float,
    connections: int,
    workdir: Path,
) -> LoadResult:
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    body_file = workdir / "body.json"
    body_file.write_bytes(body)
    argv = [
        "wrk",
        f"-t{wrk_threads(connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        str(body_file),
        token or "-",
        key_prefix,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            r = json.loads(line.removeprefix("BENCH_RESULT "))
            errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
            return LoadResult(
                generator="wrk",
                requests=r["requests"],
                errors=errors,
                seconds=r["duration_us"] / 1e6,
                p50_ms=r["p50_us"] / 1000,
                p99_ms=r["p99_us"] / 1000,
                max_ms=r["max_us"] / 1000,
                p90_ms=r["p90_us"] / 1000,
            )
    raise RuntimeError(f"wrk gave no result (exit {proc.returncode}): {proc.stderr[-500:]}")


def _run_python(
    url: str,
    body: bytes,
    token: str | None,
    key_prefix: str,
    seconds: float,
    connections: int,
) -> LoadResult:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    base_headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    if token:
        base_headers["Authorization"] = f"Bearer {token}"
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    start_gate = threading.Barrier(connections + 1)
    deadline = [0.0]

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine = latencies[i]
        n = 0
        start_gate.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= deadline[0]:
                break
            n += 1
            headers = {**base_headers, "Idempotency-Key": f"{key_prefix}-{i}-{n}"}
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            mine.append(time.perf_counter() - t0)
            if not ok:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    start_gate.wait()
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - started
    all_latencies = sorted(x for per in latencies for x in per)
    return LoadResult(
        generator="python",
        requests=len(all_latencies),
        errors=sum(errors),
        seconds=elapsed,
        p50_ms=percentile(all_latencies, 50) * 1000,
        p99_ms=percentile(all_latencies, 99) * 1000,
        max_ms=(all_latencies[-1] * 1000) if all_latencies else float("nan"),
        p90_ms=percentile(all_latencies, 90) * 1000,
    )
