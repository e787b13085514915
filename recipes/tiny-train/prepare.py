"""The fixed harness of tiny-train: the data, the time limit and the score. Never edited.

    python3 prepare.py --seconds 5      ->   val_loss: 0.012345

It makes a seeded data set (a smooth function of two inputs plus a little
noise), gives the training half to `train(x, y, seconds)` from train.py beside
it, and scores the returned `predict` on the validation half, which train.py
never sees: the mean squared error, lower is better. Training must return
within its seconds (plus a second of grace), so every experiment gets the same
compute and a better score means a better use of it.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

SEED = 1234
TRAIN, VALIDATION = 4000, 1000
GRACE = 1.0


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x = rng.uniform(-1.0, 1.0, size=(TRAIN + VALIDATION, 2))
    y = np.sin(3 * x[:, 0]) * np.cos(2 * x[:, 1]) + 0.5 * x[:, 0] * x[:, 1]
    y = (y + rng.normal(0.0, 0.05, size=len(y)))[:, None]
    return x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0, help="the training time of one experiment")
    args = parser.parse_args()
    sys.path.insert(0, ".")
    sys.dont_write_bytecode = True
    from train import train

    x, y, x_val, y_val = data()
    start = time.perf_counter()
    predict = train(x.copy(), y.copy(), args.seconds)
    took = time.perf_counter() - start
    if took > args.seconds + GRACE:
        sys.exit(f"train() took {took:.1f} s, more than its {args.seconds:g} s")
    guess = np.asarray(predict(x_val.copy()), dtype=float).reshape(-1, 1)
    if guess.shape != y_val.shape or not np.all(np.isfinite(guess)):
        sys.exit(f"predict() returned {guess.shape} values, some not finite; expected {y_val.shape}, all finite")
    print(f"trained for {took:.2f} s")
    print(f"val_loss: {float(np.mean((guess - y_val) ** 2)):.6f}")


if __name__ == "__main__":
    main()
