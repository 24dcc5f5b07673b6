"""The engine's own share of `make bench SCALE=N`: how DynamoDB Local's latency grows with a table's
item count, with no Hybridsite code in the path.

    .venv/bin/python -m bench.engine --items 1000000     # about 5 minutes, with its own DynamoDB Local

One DynamoDB Local (in memory, started here and stopped after) holds two tables shaped like the
products and category-listing tables: a small one of ``--small`` items and a large one of
``--items``. Requests to the two alternate, one by one, so both see the same machine at the same
moment: a strongly consistent GetItem of a random item (the read of a Redis miss) and a Query of
two items from a random position in a partition of ``PARTITION`` items (a listing page). On AWS
neither depends on a table's size; where DynamoDB Local's does, the SCALE bench's DynamoDB figures
grow by that much for reasons of the emulator's. The result is kept as
bench/results/engine-N.json and printed as a table.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from bench import report
from devtools.embedded import start_dynamodb_local, stop_dynamodb_local

RESULTS = Path(__file__).resolve().parent / "results"
PARTITION = 1_000  # items per listing-like partition
BODY = "x" * 800  # about the size of a product document
READS = 2_000  # timed requests of each kind on each table


def _client(endpoint: str) -> Any:
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="local",
        aws_secret_access_key="local", config=BotoConfig(max_pool_connections=8, retries={"max_attempts": 10}),
    )


def _create(client: Any, name: str) -> None:
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )


def _key(number: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"p#{number // PARTITION}"}, "sk": {"S": f"{number % PARTITION:06d}"}}


def _fill(client: Any, name: str, items: int) -> float:
    """``items`` items written 25 a call over four threads; returns the items per second."""

    def write(first: int) -> None:
        requests = [
            {"PutRequest": {"Item": {**_key(n), "body": {"S": BODY}}}} for n in range(first, min(first + 25, items))
        ]
        while requests:
            answer = client.batch_write_item(RequestItems={name: requests})
            requests = answer.get("UnprocessedItems", {}).get(name, [])

    began = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(0, items, 25)))
    return items / (time.perf_counter() - began)


def _get(client: Any, name: str, items: int, rng: random.Random) -> None:
    client.get_item(TableName=name, Key=_key(rng.randrange(items)), ConsistentRead=True)


def _query(client: Any, name: str, items: int, rng: random.Random) -> None:
    number = rng.randrange(items)
    client.query(
        TableName=name, ConsistentRead=True, Limit=2,
        KeyConditionExpression="pk = :pk AND sk > :sk",
        ExpressionAttributeValues={":pk": _key(number)["pk"], ":sk": _key(number)["sk"]},
    )


def measure(endpoint: str, small: int, large: int) -> dict[str, Any]:
    client, rng = _client(endpoint), random.Random(1)
    tables = {"small": ("engine-small", small), "large": ("engine-large", large)}
    fill_rates = {}
    for size, (name, items) in tables.items():
        _create(client, name)
        fill_rates[size] = _fill(client, name, items)
    latencies: dict[str, list[float]] = {f"{kind} {size}": [] for kind in ("get", "query") for size in tables}
    for round_number in range(READS + 200):  # the first 200 rounds warm the JVM up, untimed
        for kind, call in (("get", _get), ("query", _query)):
            for size, (name, items) in tables.items():
                began = time.perf_counter_ns()
                call(client, name, items, rng)
                if round_number >= 200:
                    latencies[f"{kind} {size}"].append((time.perf_counter_ns() - began) / 1000)
    return {
        "small": small, "large": large, "fill_items_per_second": fill_rates,
        "latency_us": {name: report.summarize(values) for name, values in latencies.items()},
    }


def markdown(results: dict[str, Any]) -> str:
    latency = results["latency_us"]
    lines = [
        f"## DynamoDB Local's latency as a table grows ({results['small']:,} and {results['large']:,} items)",
        "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['nproc']} CPUs. One DynamoDB Local, in memory;"
        " requests to the two tables alternate.",
        "",
        f"| request, p50 / p95 µs | {results['small']:,} items | {results['large']:,} items | large / small (p50) |",
        "|---|---:|---:|---:|",
    ]
    for kind, label in (("get", "GetItem, strongly consistent"), ("query", "Query, 2 items from a random position")):
        small, large = latency[f"{kind} small"], latency[f"{kind} large"]
        lines.append(
            f"| {label} | {small['p50']:,.0f} / {small['p95']:,.0f} | {large['p50']:,.0f} / {large['p95']:,.0f}"
            f" | {large['p50'] / small['p50']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items of the large table")
    parser.add_argument("--small", type=int, default=10_000, help="items of the small table")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as directory:
        endpoint = start_dynamodb_local(Path(directory), in_memory=True)["DYNAMODB_ENDPOINT"]
        try:
            results = {"machine": report.machine(), **measure(endpoint, arguments.small, arguments.items)}
        finally:
            stop_dynamodb_local(Path(directory))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"engine-{arguments.items}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (RESULTS / "engine.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
