"""Time each statistical method at k = 1,000 and 10,000 studies (synthetic data, fixed seed).

    .venv/bin/python benchmarks/methods_scale.py [--k 1000,10000] [--repeat 1]

Prints one line per method with the wall time of one call at each k (the best of
``--repeat`` calls) and the peak memory that call allocated (tracemalloc, numpy included).
Never asserts a speed: the figures are for people (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "lib"))

from metabuild.stats import bias, effects, metareg, pooling, proportions, sensitivity  # noqa: E402

SEED = 20260601


def synthetic(k: int) -> dict[str, np.ndarray]:
    """A random-effects review of ``k`` two-arm trials: pain MDs and binary counts."""
    rng = np.random.default_rng(SEED + k)
    n1 = rng.integers(10, 200, k)
    n2 = rng.integers(10, 200, k)
    sd = rng.uniform(1.0, 3.0, k)
    mu = -1.5 + rng.normal(0, 0.6, k)  # tau = 0.6
    m2 = rng.uniform(4, 7, k)
    m1 = m2 + mu + rng.normal(0, sd * np.sqrt(1 / n1 + 1 / n2))
    es = effects.mean_difference(m1, sd, n1, m2, sd, n2)
    p2 = rng.uniform(0.05, 0.5, k)
    p1 = np.clip(p2 * np.exp(rng.normal(0.3, 0.4, k)), 0.0, 1.0)
    a, c = rng.binomial(n1, p1), rng.binomial(n2, p2)
    return {"yi": es.yi, "vi": es.vi, "x": (rng.random(k) < 0.5).astype(float), "a": a, "n1": n1, "c": c, "n2": n2}


def methods(d: dict[str, np.ndarray]) -> dict[str, Callable[[], object]]:
    y, v = d["yi"], d["vi"]
    a, n1, c, n2 = d["a"], d["n1"], d["c"], d["n2"]
    return {
        "dersimonian_laird": lambda: pooling.dersimonian_laird(y, v),
        "inverse_variance_fixed": lambda: pooling.inverse_variance_fixed(y, v),
        "rr_random_effects (M-H Q)": lambda: pooling.rr_random_effects(a, n1, c, n2),
        "pooled_proportion (FT)": lambda: proportions.pooled_proportion(a, n1),
        "meta_regression (REML, KH)": lambda: metareg.meta_regression(y, v, d["x"]),
        "begg_test": lambda: bias.begg_test(y, v),
        "egger_test": lambda: bias.egger_test(y, v),
        "leave_one_out (DL)": lambda: sensitivity.leave_one_out(y, v),
        "leave_one_out_rr (M-H Q)": lambda: sensitivity.leave_one_out_rr(a, n1, c, n2),
    }


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best wall seconds, peak MB allocated during one call)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return best, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", default="1000,10000", help="comma-separated numbers of studies")
    ap.add_argument("--repeat", type=int, default=1, help="calls per timing (the best is shown)")
    args = ap.parse_args()
    ks = [int(x) for x in args.k.split(",")]
    print(f"load average at start: {os.getloadavg()[0]:.2f}; seed {SEED}")
    data = {k: methods(synthetic(k)) for k in ks}
    head = "".join(f"{f'k = {k:,}':>24}" for k in ks)
    print(f"{'method':<30}{head}")
    for name in data[ks[0]]:
        cells = []
        for k in ks:
            secs, mb = measure(data[k][name], args.repeat)
            cells.append(f"{secs:>10.3f} s {mb:>8.1f} MB")
        print(f"{name:<30}" + "".join(f"{c:>24}" for c in cells), flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
