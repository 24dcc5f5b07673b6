"""Where a hot read's time goes, beside DRF's constant-bytes floor, measured in one process.

Each part is run ``BATCH`` times in a row, the parts taking turns for ``rounds`` rounds, so that a
machine busy with something else slows them alike; a part's figure is the median of its rounds'
means, in wall time and in this thread's CPU time (``time.thread_time``: what the process itself
spent, whatever else runs on the machine, without the wait for Redis). Parts:

- ``floor``: the bench's constant-bytes DRF APIView through Django's handler and every middleware;
- ``floor_view``: the same view called directly (no handler, no middleware, no URL resolution);
- ``stack``: the hot read through every middleware and the DRF view — ``HotReadMiddleware`` left
  out, as every product read was served before it;
- ``stack_view``: the DRF view called directly (its Redis round trip included);
- ``hot``: the hot read as served (``HotReadMiddleware`` answers it);
- ``local``: the same with the process-local layer on (``HOT_READ_LOCAL_CACHE``): no round trip;
- ``redis``: the hot read's Redis round trip alone (``reader.counted_read``: the script by EVALSHA);
- ``ping``: a Redis PING round trip.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

BATCH = 100
PARTS = {
    "floor": "floor: DRF APIView, constant bytes, through every middleware",
    "floor_view": "  the floor's view called directly (no handler, middleware, resolver)",
    "stack": "hot read through every middleware and the DRF view (before: no HotReadMiddleware)",
    "stack_view": "  its DRF view called directly (Redis round trip included)",
    "hot": "hot read as served (HotReadMiddleware answers it)",
    "local": "hot read with the process-local layer (HOT_READ_LOCAL_CACHE=1): no round trip",
    "redis": "  its Redis round trip alone (reader.counted_read, EVALSHA)",
    "ping": "  a Redis PING round trip",
}


def breakdown(hot: list[str], rounds: int = 30) -> dict[str, Any]:
    from django.conf import settings
    from django.test import RequestFactory, override_settings

    from bench.inprocess import Driver
    from bench.views import FloorApi
    from devtools.net import wait_for
    from hybridsite import redis_client
    from projections import apis, local, reader
    from projections.registry import product_document

    skus = hot[:50]
    paths = [f"/api/products/{sku}/" for sku in skus]
    driver = Driver()
    without = [name for name in settings.MIDDLEWARE if name != "projections.middleware.HotReadMiddleware"]
    with override_settings(MIDDLEWARE=without):
        stack = Driver()
    factory = RequestFactory()
    requests = [factory.get(path, REMOTE_ADDR="127.0.0.1", HTTP_ACCEPT="application/json") for path in paths]
    floor_view = FloorApi.as_view()
    product_view = apis.ProductDetailApi.as_view()
    throttle = apis.anon_throttle(requests[0])
    refs = [product_document(sku) for sku in skus]
    redis = redis_client.client()
    for path in paths:  # every entry in Redis
        if driver.get(path).headers.get("X-Served-From") != "cache":
            driver.get(path)

    def cycle(call: Callable[[int], object]) -> Callable[[], None]:
        def run() -> None:
            for i in range(BATCH):
                call(i % len(skus))
        return run

    def with_local_layer(run: Callable[[], None]) -> Callable[[], None]:
        def wrapped() -> None:
            with override_settings(HOT_READ_LOCAL_CACHE=True):
                run()
        return wrapped

    with override_settings(HOT_READ_LOCAL_CACHE=True):  # every copy kept, the layer's connection up
        layer = local.layer()
        assert layer is not None
        wait_for(layer.live, 10, 0.01, "the local layer's tracking connection")
        wait_for(lambda: all(driver.get(path).headers.get("X-Served-From") == "local" for path in paths), 10, 0.01,
                 "local copies of the read set")

    parts: dict[str, Callable[[], None]] = {
        "floor": cycle(lambda i: driver.get("/bench/floor/")),
        "floor_view": cycle(lambda i: floor_view(requests[i])),
        "stack": cycle(lambda i: stack.get(paths[i])),
        "stack_view": cycle(lambda i: product_view(requests[i], sku=skus[i])),
        "hot": cycle(lambda i: driver.get(paths[i])),
        "local": with_local_layer(cycle(lambda i: driver.get(paths[i]))),
        "redis": cycle(lambda i: reader.counted_read(refs[i], throttle)),
        "ping": cycle(lambda i: redis.ping()),
    }
    wall: dict[str, list[float]] = {name: [] for name in parts}
    # The layer stays on across rounds (its connection and copies are the process's), only the
    # setting is turned on around its part.
    cpu: dict[str, list[float]] = {name: [] for name in parts}
    for run in parts.values():
        run()  # warm
    gc.collect()
    for _ in range(rounds):
        for name, run in parts.items():
            began, began_cpu = time.perf_counter_ns(), time.thread_time_ns()
            run()
            cpu[name].append((time.thread_time_ns() - began_cpu) / BATCH / 1000)
            wall[name].append((time.perf_counter_ns() - began) / BATCH / 1000)
    local.reset()
    return {
        "rounds": rounds, "batch": BATCH,
        "wall_us": {name: statistics.median(values) for name, values in wall.items()},
        "cpu_us": {name: statistics.median(values) for name, values in cpu.items()},
    }


def markdown(result: dict[str, Any]) -> str:
    wall, cpu = result["wall_us"], result["cpu_us"]
    lines = [
        "## Hot read breakdown",
        "",
        f"In process, each part {result['batch']} times in a row, the parts taking turns for {result['rounds']}"
        " rounds; median of the rounds' means. CPU = this thread's CPU time (no wait for Redis, whatever else"
        " runs on the machine).",
        "",
        "| part | wall µs | CPU µs |",
        "|---|---:|---:|",
    ]
    lines += [f"| {title} | {wall[name]:,.1f} | {cpu[name]:,.1f} |" for name, title in PARTS.items()]
    derived = {
        "handler and every middleware, per request (floor − its view)": ("floor", "floor_view"),
        "handler, every middleware and the resolver around the hot read, before (stack − its view)": (
            "stack", "stack_view"),
        "the hot read without its Redis round trip, as served (hot − redis)": ("hot", "redis"),
        "saved by HotReadMiddleware (stack − hot)": ("stack", "hot"),
    }
    lines += [f"| {title} | {wall[a] - wall[b]:,.1f} | {cpu[a] - cpu[b]:,.1f} |" for title, (a, b) in derived.items()]
    lines += [
        "",
        f"Hot read vs floor: wall {wall['hot'] / wall['floor']:.2f}x, CPU {cpu['hot'] / cpu['floor']:.2f}x"
        f" (before: wall {wall['stack'] / wall['floor']:.2f}x, CPU {cpu['stack'] / cpu['floor']:.2f}x);"
        f" with the local layer: wall {wall['local'] / wall['floor']:.2f}x, CPU {cpu['local'] / cpu['floor']:.2f}x.",
    ]
    return "\n".join(lines) + "\n"


def ratio_line(result: dict[str, Any], machine: dict[str, Any]) -> str:
    """The hot hit against the floor (floor time / hit time: at least 1.0 is the target), with
    the machine and the Redis round trip it was measured on."""
    wall = result["wall_us"]
    return (
        f"Hot hit vs DRF's constant-bytes floor (in process, floor µs / hit µs, >= 1.00x is the target):"
        f" Redis hit {wall['floor'] / wall['hot']:.2f}x ({wall['hot']:,.0f} vs {wall['floor']:,.0f} µs),"
        f" local layer {wall['floor'] / wall['local']:.2f}x ({wall['local']:,.0f} µs);"
        f" machine: {machine['cpu']}, {machine['nproc']} CPUs, Redis PING round trip {wall['ping']:,.0f} µs"
    )
