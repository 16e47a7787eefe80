"""Epoch time and per-invocation overhead of the serverless engine against the vectorized one.

On the real data set and the reference network (12288-20-7-5-1, batch 64, `sequential`,
float64), each configuration trains from the same initial weights: the vectorized engine,
then the serverless engine with the memory store (inline and threads executors), with a
Redis store, and on Ray with a Redis store. The first epoch of each is a warm-up and is not
counted (it uploads the data and, for Ray, starts the cluster); then `--epochs` epochs are
timed, or fewer when a configuration runs past `--budget` seconds.

    python bench/serverless_speed.py [DATA] [--epochs 5] [--budget 30] [--redis URL]
                                     [--skip-ray]

DATA is the datasets.h5 file; by default $ITSACAT_TEST_DATA/datasets/datasets.h5.

Figures per configuration: median epoch time, its ratio to the vectorized engine's (the
faster of its runs with the default BLAS threads and with one),
invocations per epoch and per second, the overhead per invocation (the median epoch time
beyond the vectorized engine's, divided by the invocations: it counts the dispatch, the
store and the ledger, and also that one neuron's products run as matrix-vector products
instead of one matrix product per layer), and the megabytes moved through the store.

A last line isolates the runtime's own cost: the same network and minibatches, inline with
the memory store, on 12 random features instead of 12288 pixels, so that the mathematics is
negligible and the epoch time divided by the invocations is the cost of one invocation.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from itsacat.data import load_dataset
from itsacat.nn import initialize, parse_spec
from itsacat.training.vectorized import VectorizedEngine

REFERENCE_SPEC = {
    "epochs": 2500, "layers": 4,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "relu", "layer4": "sigmoid"},
    "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
    "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0, "strategy": "sequential",
}


def time_engine(engine, params, X, Y, spec, epochs: int, budget: float
                ) -> tuple[list[float], list[dict]]:
    """Run one warm-up epoch, then up to `epochs` timed epochs within `budget` seconds."""
    params = engine.run_epoch(params, X, Y, spec, 0).params
    times, stats = [], []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        epoch_started = time.perf_counter()
        result = engine.run_epoch(params, X, Y, spec, epoch)
        times.append(time.perf_counter() - epoch_started)
        stats.append(result.stats)
        params = result.params
        if time.perf_counter() - started > budget:
            break
    return times, stats


def serverless_configurations(redis_url: str | None, skip_ray: bool) -> list[tuple[str, dict]]:
    configurations = [("memory, inline", {"executor": "inline", "param_store": "memory"}),
                      ("memory, threads", {"executor": "threads", "param_store": "memory"})]
    if redis_url is None:
        return configurations
    configurations.append(("redis, inline", {"executor": "inline", "param_store": redis_url}))
    if not skip_ray:
        configurations.append(("redis, ray", {"executor": "ray", "param_store": redis_url}))
    return configurations


def reachable_redis(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as error:
        print(f"Redis at {url} is unreachable ({error}); Redis and Ray skipped")
        return None
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("ITSACAT_TEST_DATA", "../shared")) / "datasets" / (
        "datasets.h5")
    parser.add_argument("data", nargs="?", default=str(default_data),
                        help="datasets.h5 (default: $ITSACAT_TEST_DATA/datasets/datasets.h5)")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per configuration")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds after which a configuration stops timing epochs")
    parser.add_argument("--redis", default=os.environ.get("ITSACAT_PARAM_STORE", ""),
                        help="Redis URL (default: $ITSACAT_PARAM_STORE, else "
                             "redis://127.0.0.1:6379/0)")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()

    from itsacat.serverless.engine import ServerlessEngine

    dataset = load_dataset(args.data)
    spec = parse_spec(REFERENCE_SPEC | {"epochs": args.epochs + 1})
    X, Y = dataset.train.X(spec.dtype), dataset.train.Y(spec.dtype)
    initial = initialize(spec, X.shape[0])
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, numpy {np.__version__}")
    print(f"network 12288-20-7-5-1, {dataset.train.m} examples, batch 64, sequential, "
          f"float64; medians of up to {args.epochs} epochs after one warm-up")

    # On a busy machine, BLAS threads that wait for a core can slow the vectorized engine
    # several times over, so it is timed with the default threads and with one, and the
    # faster median is the baseline.
    baselines = {}
    for threads in (None, 1):
        with threadpool_limits(limits=threads, user_api="blas"):
            times, _ = time_engine(VectorizedEngine(), initial, X, Y, spec, args.epochs,
                                   args.budget)
        baselines[threads] = statistics.median(times)
        label = "default BLAS threads" if threads is None else "1 BLAS thread"
        print(f"{'vectorized':17} epoch {baselines[threads] * 1e3:8.1f} ms ({label})")
    baseline = min(baselines.values())

    redis_url = args.redis if args.redis.startswith("redis") else "redis://127.0.0.1:6379/0"
    for name, options in serverless_configurations(reachable_redis(redis_url), args.skip_ray):
        try:
            engine = ServerlessEngine(**options)
        except Exception as error:  # Ray missing or unreachable: report and go on
            print(f"{name:17} skipped: {error}")
            continue
        try:
            times, stats = time_engine(engine, initial, X, Y, spec, args.epochs, args.budget)
        finally:
            engine.close()
        report(name, times, stats, baseline)

    rows = np.random.default_rng(0).uniform(size=(dataset.train.m, 12))
    tiny_X, tiny_initial = rows.T, initialize(spec, 12)
    engine = ServerlessEngine()
    try:
        times, stats = time_engine(engine, tiny_initial, tiny_X, Y, spec, args.epochs,
                                   args.budget)
    finally:
        engine.close()
    median = statistics.median(times)
    invocations = statistics.median(s["invocations"] for s in stats)
    print(f"{'12 features':17} epoch {median * 1e3:8.1f} ms  {invocations:4.0f} invocations  "
          f"{median / invocations * 1e6:6.1f} µs per invocation (memory, inline)")
    sys.stdout.flush()


def report(name: str, times: list[float], stats: list[dict], baseline: float) -> None:
    median = statistics.median(times)
    invocations = statistics.median(s["invocations"] for s in stats)
    megabytes = statistics.median(s["bytes"] for s in stats) / 1e6
    overhead = (median - baseline) / invocations
    print(f"{name:17} epoch {median * 1e3:8.1f} ms  ×{median / baseline:5.1f} vectorized  "
          f"{invocations:4.0f} invocations  {invocations / median:7.0f}/s  "
          f"overhead {overhead * 1e6:6.0f} µs/invocation  {megabytes:6.0f} MB/epoch  "
          f"({len(times)} epochs)")


if __name__ == "__main__":
    main()
