"""The tests of count_primes: prints how many fail (the recipe's guard wants 0).

    python3 check.py        ->   failing: 0

Each case compares the candidate with a plain sieve; an exception or a wrong
type counts as a failure, and so does a primes.py that cannot be imported.
"""

from __future__ import annotations

import sys

sys.path.insert(0, ".")
sys.dont_write_bytecode = True

CASES = [0, 1, 2, 3, 4, 5, 10, 11, 100, 101, 997, 1000, 2003, 3001]


def reference(limit: int) -> int:
    if limit < 3:
        return 0
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\0\0"
    for n in range(2, int(limit ** 0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytearray(len(range(n * n, limit, n)))
    return sum(sieve)


def main() -> None:
    try:
        from primes import count_primes
    except Exception as exc:  # the candidate does not even import
        print(f"cannot import primes.py: {exc}", file=sys.stderr)
        print(f"failing: {len(CASES)}")
        return
    failing = 0
    for limit in CASES:
        try:
            got = count_primes(limit)
        except Exception as exc:
            print(f"count_primes({limit}) raised {type(exc).__name__}: {exc}", file=sys.stderr)
            failing += 1
            continue
        want = reference(limit)
        if type(got) is not int or got != want:
            print(f"count_primes({limit}) returned {got!r}, expected {want}", file=sys.stderr)
            failing += 1
    print(f"failing: {failing}")


if __name__ == "__main__":
    main()
