"""Throughput and latency of the prediction service against a naive baseline, on loopback.

Starts `itsacat serve` (one uvicorn worker unless `--workers`) and `bench/naive_service.py`
in subprocesses on 127.0.0.1, each serving the same model folder (the reference
12288-20-7-5-1 network). Each is driven by a closed-loop load generator: `--clients`
keep-alive connections, each posting the same picture as a multipart upload as soon as its
previous response arrives, for `--duration` seconds or `--max-requests` requests, whichever
ends first. Two pictures: a 64×64 PNG and a 1000×1000 (1 megapixel) JPEG.

    python bench/serve_speed.py [--duration 30] [--clients 16] [--runs 3] [--skip-naive]

Figures per service and picture: requests/s, p50 and p99 latency, errors (non-200 responses
and connection failures), each the median over `--runs` runs, and the CPU time the server and
the load generator used. The load generator is one asyncio process writing prebuilt requests
and reading responses with minimal parsing, so it needs far less CPU than the server. Its
share is printed so the reader can check that it did not starve the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from itsacat.nn import Model, initialize, parse_spec
from itsacat.nn.io import save_model

REFERENCE_SPEC = {
    "epochs": 2500, "layers": 4,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "relu", "layer4": "sigmoid"},
    "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
    "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0019,
}
BOUNDARY = "itsacat-bench-boundary"
WARMUP_SECONDS = 1.0


@dataclass
class LoadResult:
    requests: int  # responses with status 200
    errors: int
    seconds: float
    latencies: list[float]  # seconds, of every request that got a 200
    client_cpu: float  # seconds of CPU the load generator used
    server_cpu: float  # seconds of CPU the server process used

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


def make_pictures(photo: Path | None) -> dict[str, tuple[str, bytes]]:
    """Return the two benchmark uploads: a 64×64 PNG and a 1-megapixel JPEG."""
    if photo is not None:
        source = Image.open(photo).convert("RGB")
    else:
        # Smooth gradients plus noise: closer to a photo's compressibility than flat colour.
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:1000, 0:1000]
        base = np.stack([x / 4, y / 4, (x + y) / 8], axis=-1) % 256
        noise = rng.normal(0, 12, size=base.shape)
        source = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))

    png, jpeg = io.BytesIO(), io.BytesIO()
    source.resize((64, 64), Image.Resampling.LANCZOS).save(png, format="PNG")
    source.resize((1000, 1000), Image.Resampling.LANCZOS).save(jpeg, format="JPEG", quality=90)
    return {"64x64 PNG": ("probe.png", png.getvalue()),
            "1 MP JPEG": ("photo.jpg", jpeg.getvalue())}


def multipart_request(port: int, filename: str, data: bytes) -> bytes:
    """Build the full bytes of one keep-alive `POST /predict` with a multipart file."""
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


async def generate_load(port: int, request: bytes, clients: int, duration: float,
                        max_requests: int) -> tuple[int, int, float, list[float]]:
    """Keep `clients` connections busy; return (answered, errors, seconds, latencies)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + duration
    latencies: list[float] = []
    errors = 0
    budget = max_requests

    async def client() -> None:
        nonlocal errors, budget
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while loop.time() < deadline and budget > 0:
            budget -= 1
            sent = time.perf_counter()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = _content_length(head)
                await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if head[9:12] == b"200":
                latencies.append(time.perf_counter() - sent)
            else:
                errors += 1
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return len(latencies), errors, loop.time() - started, latencies


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    raise ConnectionError("response without Content-Length")


def run_load(port: int, pid: int, request: bytes, args) -> LoadResult:
    """Warm up, then measure one load run against the server on `port`."""
    asyncio.run(generate_load(port, request, args.clients, WARMUP_SECONDS, args.max_requests))
    client_before = _own_cpu()
    server_before = _process_cpu(pid)
    answered, errors, seconds, latencies = asyncio.run(
        generate_load(port, request, args.clients, args.duration, args.max_requests))
    return LoadResult(answered, errors, seconds, latencies, _own_cpu() - client_before,
                      _process_cpu(pid) - server_before)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    """CPU seconds of a process, its threads and its child processes (uvicorn workers), from
    /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            with contextlib.suppress(OSError):
                seconds += _process_cpu(int(child))
    return seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command: list[str], port: int, workdir: Path, ready_path: str
                 ) -> subprocess.Popen:
    """Start a server subprocess (logs to a file) and wait until `ready_path` returns 200."""
    log = (workdir / f"server-{port}.log").open("w")
    env = os.environ | {"ITSACAT_HOME": str(workdir / "home")}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:3]} exited with {process.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{command[:3]} did not become ready in 60 s; see {log.name}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure(name: str, command: list[str], ready_path: str, pictures, args, workdir: Path
            ) -> dict[str, list[LoadResult]]:
    port = int(command[command.index("--port") + 1])
    process = start_server(command, port, workdir, ready_path)
    results: dict[str, list[LoadResult]] = {}
    try:
        for picture, (filename, data) in pictures.items():
            request = multipart_request(port, filename, data)
            results[picture] = []
            for run in range(1, args.runs + 1):
                result = run_load(port, process.pid, request, args)
                results[picture].append(result)
                print(f"  {name:8} {picture:10} run {run}: {result.rate:8.1f} req/s  "
                      f"p50 {result.percentile(50):7.2f} ms  p99 {result.percentile(99):7.2f} "
                      f"ms  errors {result.errors}", flush=True)
    finally:
        stop_server(process)
    return results


def summarize(name: str, picture: str, runs: list[LoadResult]) -> dict:
    return {
        "service": name, "picture": picture, "runs": len(runs),
        "requests_per_s": statistics.median(r.rate for r in runs),
        "p50_ms": statistics.median(r.percentile(50) for r in runs),
        "p99_ms": statistics.median(r.percentile(99) for r in runs),
        "errors": sum(r.errors for r in runs),
        "server_cpu_per_s": statistics.median(r.server_cpu / r.seconds for r in runs),
        "client_cpu_per_s": statistics.median(r.client_cpu / r.seconds for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds of load per run (default: 30)")
    parser.add_argument("--clients", type=int, default=16,
                        help="concurrent connections (default: 16)")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (default: 3)")
    parser.add_argument("--max-requests", type=int, default=1_000_000,
                        help="stop a run after this many requests (default: 1,000,000)")
    parser.add_argument("--photo", type=Path,
                        help="a photo to resize into the two uploads (default: synthetic)")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes of itsacat serve (default: 1)")
    parser.add_argument("--skip-naive", action="store_true", help="do not run the baseline")
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs, load average before "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.clients} clients, "
          f"{args.duration:g} s per run, {args.runs} runs, {args.workers} itsacat worker(s)",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="itsacat-bench-") as temporary:
        workdir = Path(temporary)
        spec = parse_spec(REFERENCE_SPEC, "reference spec")
        model_folder = save_model(Model(spec, initialize(spec, 64 * 64 * 3)),
                                  workdir / "model")
        pictures = make_pictures(args.photo)

        services = {"itsacat": ([sys.executable, "-m", "itsacat", "serve", "--slot", "blue",
                                 "--model", str(model_folder), "--workers", str(args.workers),
                                 "--port", str(free_port())],
                                "/readyz")}
        if not args.skip_naive:
            naive = Path(__file__).with_name("naive_service.py")
            services["naive"] = ([sys.executable, str(naive), "--model", str(model_folder),
                                  "--port", str(free_port())], "/docs")

        summary = []
        for name, (command, ready_path) in services.items():
            results = measure(name, command, ready_path, pictures, args, workdir)
            summary += [summarize(name, picture, runs) for picture, runs in results.items()]

    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'service':8} {'picture':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'server CPU':>10} {'client CPU':>10}")
    for row in summary:
        print(f"{row['service']:8} {row['picture']:10} {row['requests_per_s']:9.1f} "
              f"{row['p50_ms']:8.2f} {row['p99_ms']:8.2f} {row['errors']:6d} "
              f"{row['server_cpu_per_s']:9.0%} {row['client_cpu_per_s']:10.0%}")
    by_key = {(row["service"], row["picture"]): row for row in summary}
    for picture in pictures:
        if ("naive", picture) in by_key:
            ratio = (by_key[("itsacat", picture)]["requests_per_s"]
                     / by_key[("naive", picture)]["requests_per_s"])
            print(f"ratio itsacat/naive, {picture}: {ratio:.1f}×")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
