"""A small HTTP load generator for when ``wrk`` is not installed: fixed concurrency, fixed duration.

    python -m bench.loadgen --port 8000 --concurrency 16 --seconds 10 --paths-file FILE

One asyncio loop with ``--concurrency`` workers, each sending one request at a time and walking
the paths (one a line) from its own offset, so that the workers read disjoint slices first.
gunicorn's sync workers close the connection after every response, so each request opens its own
connection, as wrk does against them. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


async def _worker(port: int, requests: list[bytes], start: int, deadline: float, out: dict) -> None:
    i = start
    clock = time.perf_counter
    while clock() < deadline:
        payload = requests[i % len(requests)]
        i += 1
        begin = clock()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            data = await asyncio.wait_for(reader.read(), timeout=30)
            writer.close()
        except (TimeoutError, OSError) as exc:
            out["errors"][type(exc).__name__] = out["errors"].get(type(exc).__name__, 0) + 1
            continue
        elapsed = clock() - begin
        status = data[9:12].decode(errors="replace") if data.startswith(b"HTTP/") else "bad"
        out["status"][status] = out["status"].get(status, 0) + 1
        header_end = data.find(b"\r\n\r\n")
        for line in data[:header_end].split(b"\r\n")[1:]:
            if line[:15].lower() == b"x-served-from: ":
                served = line[15:].decode()
                out["served_from"][served] = out["served_from"].get(served, 0) + 1
        out["latencies"].append(elapsed * 1_000_000)


async def run(port: int, paths: list[str], concurrency: int, seconds: float) -> dict:
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Accept: application/json\r\nConnection: close\r\n\r\n".encode()
        for path in paths
    ]
    out: dict = {"status": {}, "served_from": {}, "errors": {}, "latencies": []}
    begin = time.perf_counter()
    deadline = begin + seconds
    stride = max(len(requests) // concurrency, 1)
    await asyncio.gather(*(_worker(port, requests, n * stride, deadline, out) for n in range(concurrency)))
    elapsed = time.perf_counter() - begin
    latencies = sorted(out.pop("latencies"))
    ok = out["status"].get("200", 0)
    return {
        **out,
        "generator": f"python asyncio (bench/loadgen.py), {concurrency} connections, 1 process",
        "seconds": elapsed,
        "requests": len(latencies),
        "requests_per_second": len(latencies) / elapsed,
        "ok_per_second": ok / elapsed,
        "latency_us": {f"p{q}": percentile(latencies, q) for q in (50, 95, 99)},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--paths-file", required=True)
    args = parser.parse_args()
    with open(args.paths_file) as lines:
        paths = lines.read().split()
    print(json.dumps(asyncio.run(run(args.port, paths, args.concurrency, args.seconds))))


if __name__ == "__main__":
    main()
