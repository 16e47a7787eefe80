"""Training speed of the vectorized numpy engine against PyTorch on the CPU and the machine's
matrix-multiply peak.

On the real data set and the reference network (12288-20-7-5-1, batch 64, `sequential`), each
engine trains for the same number of epochs from the same initial weights, in float32 and
float64. The threshold is disabled so every epoch runs. A large square matrix product
measures the practical peak of the BLAS library numpy uses.

    python bench/train_speed.py [--data PATH] [--epochs 2500] [--skip-torch]

Figures: wall time, epochs/s, achieved FLOP/s (counted from the layer sizes, not measured),
the ratio numpy/torch of median epoch times (≤ 1.0: numpy is no slower) and the share of the
matmul peak that training reaches.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from itsacat.data import load_dataset
from itsacat.nn import initialize, parse_spec, partition
from itsacat.training.vectorized import VectorizedEngine

REFERENCE_SPEC = {
    "epochs": 2500, "layers": 4,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "relu", "layer4": "sigmoid"},
    "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
    "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0, "strategy": "sequential",
}


def flops_per_epoch(sizes: list[int], m: int) -> float:
    """Floating-point operations of one epoch, counting multiply-adds as two.

    Forward: W·A per layer. Backward: dW = dZ·Aᵀ per layer and dA = Wᵀ·dZ for every layer but
    the first, whose input needs no gradient. Elementwise work is left out (under 1%).
    """
    products = [sizes[l] * sizes[l - 1] for l in range(1, len(sizes))]
    return 2.0 * m * (2 * sum(products) + sum(products[1:]))


def time_numpy(dataset, spec, epochs: int) -> list[float]:
    X, Y = dataset.train.X(spec.dtype), dataset.train.Y(spec.dtype)
    params = initialize(spec, X.shape[0])
    engine = VectorizedEngine()
    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        params = engine.run_epoch(params, X, Y, spec, epoch).params
        times.append(time.perf_counter() - started)
    return times


def time_torch(dataset, spec, epochs: int) -> list[float]:
    """The same network, initial weights and minibatches, written as a PyTorch user would:
    autograd for the gradients and an in-place SGD step."""
    import torch

    dtype = getattr(torch, spec.dtype)
    rows = torch.from_numpy(np.ascontiguousarray(dataset.train.X(spec.dtype).T))
    labels = torch.from_numpy(dataset.train.Y(spec.dtype).reshape(-1))
    initial = initialize(spec, rows.shape[1])
    weights = [torch.tensor(initial.W[l], dtype=dtype, requires_grad=True)
               for l in range(1, spec.layers + 1)]
    biases = [torch.tensor(initial.b[l].reshape(-1), dtype=dtype, requires_grad=True)
              for l in range(1, spec.layers + 1)]
    loss_function = torch.nn.BCEWithLogitsLoss()

    times = []
    for epoch in range(epochs):
        started = time.perf_counter()
        for indices in partition(rows.shape[0], spec.batch_size, spec.seed, epoch):
            index = torch.from_numpy(indices)
            A = rows.index_select(0, index)
            for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
                Z = torch.addmm(b, A, W.T)
                A = torch.relu(Z) if l < spec.layers - 1 else Z
            loss = loss_function(A.reshape(-1), labels.index_select(0, index))
            loss.backward()
            with torch.no_grad():
                for parameter in (*weights, *biases):
                    parameter.sub_(spec.learning_rate * parameter.grad)
                    parameter.grad = None
        times.append(time.perf_counter() - started)
    return times


def matmul_peak(dtype: str, n: int = 2048, repeats: int = 7) -> float:
    """Median FLOP/s of an n×n by n×n product with numpy's BLAS."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    a @ b
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        samples.append(2.0 * n**3 / (time.perf_counter() - started))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("ITSACAT_TEST_DATA", "../shared")) / "datasets" / (
        "datasets.h5")
    parser.add_argument("--data", default=str(default_data))
    parser.add_argument("--epochs", type=int, default=2500)
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    sizes = [dataset.train.X().shape[0], *REFERENCE_SPEC["neurons"].values()]
    work = flops_per_epoch(sizes, dataset.train.m)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}")
    print(f"network {'-'.join(map(str, sizes))}, {dataset.train.m} examples, batch 64, "
          f"{args.epochs} epochs, {work / 1e6:.0f} MFLOP per epoch")

    for dtype in ("float32", "float64"):
        spec = parse_spec(REFERENCE_SPEC | {"dtype": dtype, "epochs": args.epochs})
        peak = matmul_peak(dtype)
        numpy_times = time_numpy(dataset, spec, args.epochs)
        report(f"numpy {dtype}", numpy_times, work, peak)
        print(f"  matmul peak {dtype}: {peak / 1e9:.1f} GFLOP/s (2048×2048, median of 7)")
        if args.skip_torch:
            continue
        try:
            torch_times = time_torch(dataset, spec, args.epochs)
        except ImportError:
            print("  torch: not installed (pip install '.[torch]'); skipped")
            continue
        report(f"torch {dtype}", torch_times, work, peak)
        ratio = statistics.median(numpy_times) / statistics.median(torch_times)
        print(f"  ratio numpy/torch (median epoch time): {ratio:.2f}")


def report(name: str, times: list[float], work: float, peak: float) -> None:
    median = statistics.median(times)
    print(f"{name:14} wall {sum(times):7.2f} s  {len(times) / sum(times):7.1f} epochs/s  "
          f"median epoch {median * 1e3:6.2f} ms  {work / median / 1e9:6.1f} GFLOP/s  "
          f"{work / median / peak:5.1%} of matmul peak")


if __name__ == "__main__":
    main()
