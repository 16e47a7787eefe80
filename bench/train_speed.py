"""Training speed of the vectorized numpy engine against PyTorch on the CPU and the machine's
matrix-multiply peak.

On the real data set and the reference network (12288-20-7-5-1, batch 64, `sequential`), each
engine trains for the same number of epochs from the same initial weights, in float32 and
float64, alternating in five rounds. The threshold is disabled so every epoch runs. A large
square matrix product measures the practical peak of the BLAS library numpy uses.

    python bench/train_speed.py [--data PATH] [--epochs 2500] [--skip-torch]

Figures: wall time, epochs/s, FLOP/s, the ratio numpy/torch of median epoch times (≤ 1.0:
numpy is no slower) and the share of the matmul peak. FLOP/s counts the operations of the
textbook algorithm (two first-layer products per minibatch), which PyTorch executes. The numpy
engine reaches the same weights with one wide first-layer product per epoch through the Gram
matrix (see `itsacat.training.vectorized`), so for it the figure is an effective rate; the
rate of the operations it actually executes is printed beside it.
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

ROUNDS = 5

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


def executed_flops_per_epoch(sizes: list[int], m: int, batch_size: int) -> float:
    """Operations the vectorized engine's Gram shortcut executes per epoch: one wide
    first-layer product, the Gram corrections (at most m² per first-layer neuron, twice) and
    the other layers as in `flops_per_epoch`."""
    n_1, n_x = sizes[1], sizes[0]
    later = flops_per_epoch(sizes[1:], m)
    return 2.0 * n_1 * n_x * m + 2.0 * 2 * n_1 * m * m + later


def numpy_trainer(dataset, spec):
    """Return a function that trains `epochs` more epochs and returns their times."""
    X, Y = dataset.train.X(spec.dtype), dataset.train.Y(spec.dtype)
    state = {"params": initialize(spec, X.shape[0]), "epoch": 0}
    engine = VectorizedEngine()

    def train(epochs: int) -> list[float]:
        times = []
        for _ in range(epochs):
            started = time.perf_counter()
            result = engine.run_epoch(state["params"], X, Y, spec, state["epoch"])
            state["params"], state["epoch"] = result.params, state["epoch"] + 1
            times.append(time.perf_counter() - started)
        return times
    return train


def torch_trainer(dataset, spec):
    """Train the same network from the same weights on the same minibatches, written as a
    PyTorch user would: autograd for the gradients and an in-place SGD step."""
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
    state = {"epoch": 0}

    def train(epochs: int) -> list[float]:
        times = []
        for _ in range(epochs):
            started = time.perf_counter()
            for indices in partition(rows.shape[0], spec.batch_size, spec.seed,
                                     state["epoch"]):
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
            state["epoch"] += 1
            times.append(time.perf_counter() - started)
        return times
    return train


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
        trainers = {"numpy": numpy_trainer(dataset, spec)}
        if not args.skip_torch:
            try:
                trainers["torch"] = torch_trainer(dataset, spec)
            except ImportError:
                print("  torch: not installed (pip install torch==2.13.0); skipped")

        # Alternate the engines in rounds so that a noisy neighbour slows both alike.
        times: dict[str, list[float]] = {name: [] for name in trainers}
        per_round = max(1, args.epochs // ROUNDS)
        for _ in range(ROUNDS):
            for name, train in trainers.items():
                times[name] += train(per_round)

        for name in trainers:
            report(f"{name} {dtype}", times[name], work, peak)
        executed = executed_flops_per_epoch(sizes, dataset.train.m, spec.batch_size)
        median = statistics.median(times["numpy"])
        print(f"  numpy executes {executed / 1e6:.0f} MFLOP per epoch: "
              f"{executed / median / 1e9:.1f} GFLOP/s, {executed / median / peak:.1%} of peak")
        print(f"  matmul peak {dtype}: {peak / 1e9:.1f} GFLOP/s (2048×2048, median of 7)")
        if "torch" in times:
            ratio = statistics.median(times["numpy"]) / statistics.median(times["torch"])
            print(f"  ratio numpy/torch (median epoch time): {ratio:.2f}")


def report(name: str, times: list[float], work: float, peak: float) -> None:
    median = statistics.median(times)
    print(f"{name:14} wall {sum(times):7.2f} s  {len(times) / sum(times):7.1f} epochs/s  "
          f"median epoch {median * 1e3:6.2f} ms  {work / median / 1e9:6.1f} GFLOP/s  "
          f"{work / median / peak:5.1%} of matmul peak")


if __name__ == "__main__":
    main()
