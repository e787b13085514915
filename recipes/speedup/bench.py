"""Times count_primes from the primes.py beside it; prints the best of a few runs, in seconds.

    python3 bench.py        ->   seconds: 0.123456

overnight runs this in a work folder holding the candidate primes.py. The
result is checked too, so a fast wrong answer is a crash, not a win (the
guard in check.py tests the function more widely).
"""

from __future__ import annotations

import sys
import time

sys.path.insert(0, ".")
sys.dont_write_bytecode = True

from primes import count_primes  # noqa: E402

LIMIT = 3000
EXPECTED = 430  # primes below 3000
RUNS = 3


def main() -> None:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        got = count_primes(LIMIT)
        best = min(best, time.perf_counter() - start)
        if got != EXPECTED:
            sys.exit(f"count_primes({LIMIT}) returned {got!r}, not {EXPECTED}")
    print(f"seconds: {best:.6f}")


if __name__ == "__main__":
    main()
