"""HTTP load generators: wrk with a Lua script when installed, else Python threads.

Both keep `connections` keep-alive connections busy for a fixed duration, POST with a unique
Idempotency-Key per request, and report throughput and latency percentiles: `run_load` the same
body to one URL, `run_requests` a list of requests, each with its own token, path and body.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from bench.common import Config, percentile, progress

# Both scripts begin by numbering the threads (`tid`, from 1) and end with `done`, which reports
# the run on one line.
_WRK_THREADS = r"""
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
"""

_WRK_DONE = r"""
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

# `run_load`: one body (a file) to the URL. Each wrk thread numbers its own requests; the key is
# prefix-thread-counter.
WRK_SCRIPT = (
    _WRK_THREADS
    + r"""
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
"""
    + _WRK_DONE
)

# `run_requests`: the list of requests, one line each (token TAB path TAB body). With order
# `each`, every thread walks the whole list round and round from its own offset (7 times its
# number); with `shared` or `once`, thread t of n takes requests t, t+n, t+2n, ...: round and
# round (`shared`) or each at most once, then the `exhausted` path (`once`). The key is
# prefix-thread-counter, the counter the thread's own.
REQUESTS_SCRIPT = (
    _WRK_THREADS
    + r"""
function init(args)
  reqs = {}
  for line in io.lines(args[1]) do
    local a = line:find("\t", 1, true)
    local b = line:find("\t", a + 1, true)
    table.insert(reqs, {line:sub(1, a - 1), line:sub(a + 1, b - 1), line:sub(b + 1)})
  end
  prefix = args[2]
  nthreads = tonumber(args[3])
  order = args[4]
  exhausted = args[5]
  counter = 0
  hdrs = {["Content-Type"] = "application/json"}
end

function request()
  local r
  if order == "each" then
    r = reqs[((counter + (tid - 1) * 7) % #reqs) + 1]
  else
    local i = tid + counter * nthreads
    if i <= #reqs then
      r = reqs[i]
    elseif order == "once" then
      r = {reqs[1][1], exhausted, reqs[1][3]}
    else
      r = reqs[((i - 1) % #reqs) + 1]
    end
  end
  counter = counter + 1
  hdrs["Authorization"] = "Bearer " .. r[1]
  hdrs["Idempotency-Key"] = prefix .. "-" .. tid .. "-" .. counter
  return wrk.format("POST", r[2], hdrs, r[3])
end
"""
    + _WRK_DONE
)

Order = Literal["each", "shared", "once"]


@dataclass(frozen=True)
class Request:
    """One POST of `run_requests`: the bearer token, the path and the JSON body (one line:
    no newline in it); `kind` labels it for the caller and is not sent."""

    token: str
    path: str
    body: bytes
    kind: str = ""


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


def announce(cfg: Config, name: str) -> tuple[str, str]:
    """The generator `cfg` asks for (`choose`) and its description, told in the progress."""
    generator = choose(cfg.loadgen)
    description = describe(generator, cfg.connections)
    progress(f"{name} load generator: {description}")
    return generator, description


def progress_load(label: str, load: LoadResult, detail: str = "") -> None:
    """Tell a load's throughput, latencies and errors in the progress, after `label`."""
    progress(
        f"{label}: {load.throughput:,.0f} req/s, p50 {load.p50_ms:.1f} ms, "
        f"p99 {load.p99_ms:.1f} ms, {load.errors} errors of {load.requests}{detail}"
    )


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
    """POST `body` to `url` over and over, with `token` (if any) as the bearer."""
    if generator == "wrk":
        body_file = workdir / "body.json"
        body_file.write_bytes(body)
        return _run_wrk(
            "post.lua",
            WRK_SCRIPT,
            url,
            [str(body_file), token or "-", key_prefix],
            seconds,
            connections,
            workdir,
        )
    path = urlsplit(url).path or "/"
    base_headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    if token:
        base_headers["Authorization"] = f"Bearer {token}"

    def pick(i: int, n: int) -> tuple[str, dict[str, str], bytes]:
        return path, {**base_headers, "Idempotency-Key": f"{key_prefix}-{i}-{n + 1}"}, body

    return _run_python(url, pick, seconds, connections)


def run_requests(
    generator: str,
    base: str,
    requests: Sequence[Request],
    key_prefix: str,
    seconds: float,
    connections: int,
    workdir: Path,
    *,
    order: Order = "each",
    exhausted: str = "",
) -> LoadResult:
    """POST `requests` (to `base` + each one's path), in the `order`:

    - `each`: every connection walks the whole list round and round from its own offset
      (7 requests on per connection; under wrk, per wrk thread);
    - `shared`: the connections take the requests in turn, round and round;
    - `once`: in turn, each at most once; then `exhausted` (a path: its answer tells the caller
      that the list ran out) with the first request's token and body.

    `shared` and `once` in turn: under wrk, thread t of n takes requests t, t+n, t+2n, ...;
    under Python, each thread the next one not yet taken.
    """
    if order == "once" and not exhausted:
        raise ValueError("order `once` needs the `exhausted` path")
    if generator == "wrk":
        listing = workdir / f"requests-{key_prefix}.tsv"
        listing.write_bytes(
            b"".join(f"{r.token}\t{r.path}\t".encode() + r.body + b"\n" for r in requests)
        )
        threads = wrk_threads(connections)
        return _run_wrk(
            "requests.lua",
            REQUESTS_SCRIPT,
            base + requests[0].path,
            [str(listing), key_prefix, str(threads), order, exhausted or "-"],
            seconds,
            connections,
            workdir,
        )
    taken = itertools.count()  # next() is atomic under the GIL

    def pick(i: int, n: int) -> tuple[str, dict[str, str], bytes]:
        if order == "each":
            r, key = requests[(n + i * 7) % len(requests)], n + 1
        else:
            key = next(taken)
            if key < len(requests) or order == "shared":
                r = requests[key % len(requests)]
            else:
                r = Request(requests[0].token, exhausted, requests[0].body)
        headers = {
            "Content-Type": "application/json",
            "Content-Length": str(len(r.body)),
            "Authorization": f"Bearer {r.token}",
            "Idempotency-Key": f"{key_prefix}-{i}-{key}",
        }
        return r.path, headers, r.body

    return _run_python(base, pick, seconds, connections)


def warm_then_load(
    cfg: Config,
    generator: str,
    base: str,
    warm: Sequence[Request],
    requests: Sequence[Request],
    tag: str,
    workdir: Path,
    mark: Callable[[], int],
    *,
    order: Order = "each",
    exhausted: str = "",
) -> tuple[LoadResult, int]:
    """`run_requests` of `warm` for the warm-up (if `cfg` has one), then `mark()` (where the
    measured phase starts: a log position), then of `requests` measured; keys warm<tag>-...
    and run<tag>-.... The measured load and the mark."""
    if cfg.warmup_seconds > 0:
        run_requests(
            generator,
            base,
            warm,
            f"warm{tag}",
            cfg.warmup_seconds,
            cfg.connections,
            workdir,
            order=order,
            exhausted=exhausted,
        )
    before = mark()
    load = run_requests(
        generator,
        base,
        requests,
        f"run{tag}",
        cfg.load_seconds,
        cfg.connections,
        workdir,
        order=order,
        exhausted=exhausted,
    )
    return load, before


def _run_wrk(
    script_name: str,
    script: str,
    url: str,
    script_args: list[str],
    seconds: float,
    connections: int,
    workdir: Path,
) -> LoadResult:
    """Run wrk with the Lua `script` (its arguments `script_args`) and read its BENCH_RESULT."""
    script_file = workdir / script_name
    script_file.write_text(script)
    argv = [
        "wrk",
        f"-t{wrk_threads(connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script_file),
        url,
        "--",
        *script_args,
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
    pick: Callable[[int, int], tuple[str, dict[str, str], bytes]],
    seconds: float,
    connections: int,
) -> LoadResult:
    """`connections` threads, each with a keep-alive connection to `url`'s host, POSTing until
    the time is up; thread i's request n (from 0) is `pick(i, n)`: path, headers, body."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
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
            path, headers, body = pick(i, n)
            n += 1
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
