"""Phase 4: the read paths over HTTP: gunicorn with 2 sync workers and wrk (bench/loadgen.py
without wrk)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from bench.config import Clock, Config
from bench.paths import PATHS, URLS
from bench.procs import LOG_DIR, Processes


def run_wrk(port: int, paths: list[str], seconds: float, concurrency: int, once: bool = False) -> dict[str, Any]:
    """wrk's threads each walk the paths from their own offset and count the answers by
    X-Served-From; with ``once`` a thread stops after its share (each path read about once: a
    Redis-miss path wrapping around would be read from the cache)."""
    script = LOG_DIR / "paths.lua"
    quoted = ", ".join(json.dumps(path) for path in paths)
    script.write_text(
        f"local paths = {{{quoted}}}\nlocal limit = {len(paths) // 2 if once else 0}\n"
        "local threads = {}\nlocal i = 0\nlocal answered = 0\nserved = {}\n"
        "function setup(thread)\n  thread:set(\"offset\", #threads)\n  table.insert(threads, thread)\nend\n"
        "function request()\n  i = i + 1\n"
        "  local n = ((offset or 0) * math.floor(#paths / 2) + i) % #paths + 1\n"
        "  return wrk.format(\"GET\", paths[n])\nend\n"
        "function response(status, headers, body)\n"
        "  local source = headers[\"X-Served-From\"] or \"-\"\n"
        "  served[source] = (served[source] or 0) + 1\n  answered = answered + 1\n"
        "  if limit > 0 and answered >= limit then wrk.thread:stop() end\nend\n"
        "function done(summary, latency, requests)\n"
        "  io.write(string.format(\"p95_us %d\\n\", latency:percentile(95)))\n"
        "  for _, thread in ipairs(threads) do\n"
        "    for source, n in pairs(thread:get(\"served\")) do\n"
        "      io.write(string.format(\"served %s %d\\n\", source, n))\n    end\n"
        "  end\nend\n"
    )
    completed = subprocess.run(
        ["wrk", "-t2", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    text = completed.stdout

    def number(pattern: str, default: float = 0.0) -> float:
        match = re.search(pattern, text)
        return float(match.group(1)) if match else default

    def duration_us(label: str) -> float:
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
        if not match:
            return float("nan")
        return float(match.group(1)) * {"us": 1, "ms": 1_000, "s": 1_000_000}[match.group(2)]

    requests = int(number(r"(\d+) requests in"))
    served: Counter[str] = Counter()
    for source, n in re.findall(r"^served (\S+) (\d+)$", text, re.MULTILINE):
        served[source] += int(n)
    non_2xx = int(number(r"Non-2xx or 3xx responses:\s+(\d+)"))
    errors = {}
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket_errors:
        errors = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), socket_errors.groups()) if int(v)}
    return {
        "generator": f"wrk -t2 -c{concurrency}",
        "requests": requests,
        "requests_per_second": number(r"Requests/sec:\s+([\d.]+)"),
        "status": {"200": requests - non_2xx, **({"non-2xx": non_2xx} if non_2xx else {})},
        "errors": errors,
        "latency_us": {
            "p50": duration_us("50"), "p95": number(r"p95_us (\d+)", float("nan")), "p99": duration_us("99"),
        },
        "served_from": dict(served),
        "raw": text,
    }


def run_loadgen(procs: Processes, port: int, paths: list[str], seconds: float, concurrency: int) -> dict[str, Any]:
    paths_file = LOG_DIR / "paths.txt"
    paths_file.write_text("\n".join(paths))
    process = procs.start(
        "loadgen",
        [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--concurrency", str(concurrency),
         "--seconds", str(seconds), "--paths-file", str(paths_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = process.communicate(timeout=seconds + 120)
    procs.stop(process)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {err.decode(errors='replace')[-2000:]}")
    return json.loads(out)


def over_http(cfg: Config, procs: Processes, hot: list[str], others: list[str], clock: Clock) -> dict[str, Any]:
    """Paths 1-4 cycle over the read set. Path 5 reads products whose Redis entries were dropped,
    path 6 products whose Redis entries and DynamoDB items were dropped, each SKU once (the
    load generator's connections walk disjoint slices), so every request is a miss of its kind."""
    from bench.state import Unprojector, forget_cached

    began = time.perf_counter()
    port = procs.gunicorn(workers=2)
    clock.step("gunicorn", began, f"2 sync workers, bench settings, on 127.0.0.1:{port}")
    wrk = shutil.which("wrk")

    def load(paths: list[str], seconds: float, once: bool) -> dict[str, Any]:
        if wrk:
            return run_wrk(port, paths, seconds, cfg.concurrency, once)
        return run_loadgen(procs, port, paths, seconds, cfg.concurrency)

    results: dict[str, Any] = {}
    generator = ""
    try:
        for name in PATHS:
            began = time.perf_counter()
            if name == "dynamodb":
                skus = others
                forget_cached(skus)
            elif name == "cold":
                skus = others[:cfg.cold_skus]
                Unprojector(skus)(skus)
            else:
                skus = hot
            paths = list(dict.fromkeys(URLS[name](sku) for sku in skus))
            warm = max(1, len(paths) // 10) if name in ("dynamodb", "cold") else len(paths)
            once = name in ("dynamodb", "cold")  # each SKU read once: a second read would be a hit
            load(paths[-warm:], cfg.http_warmup_seconds, once)
            measured = load(paths[:-warm] if warm < len(paths) else paths, cfg.http_seconds, once)
            generator = measured.pop("generator")
            results[name] = measured
            clock.step(
                f"HTTP {name}", began, f"{measured['requests_per_second']:,.0f} req/s, status {measured['status']},"
                f" served from {measured.get('served_from', '?')}, errors {measured['errors']}",
            )
    finally:
        for _, process in [p for p in procs.running if p[0] == "gunicorn"]:
            procs.stop(process)
    if not wrk:
        generator += " (wrk is not on PATH; `apt-get install wrk` and it is used instead)"
    return {"generator": generator, "paths": results}
