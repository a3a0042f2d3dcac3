"""Large-integer factorial: the CPU-bound control with no file I/O at all.

The product is computed in pure Python (a loop of big-integer multiplications, as a function
written without math.factorial would), so its time is interpreter and bignum work only.
"""

import hashlib

import contract

PRESETS = {"tiny": 2_000, "small": 20_000, "full": 60_000}


def factorial(n):
    acc = 1
    for i in range(2, n + 1):
        acc *= i
    return acc


def main():
    p = contract.parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, help="compute n! (default: from --size)")
    a = p.parse_args()
    n = a.n or PRESETS[a.size]
    if n < 0:
        raise SystemExit(f"factorial: --n {n} must be non-negative")
    ph = contract.Phases(["compute"])
    value = ph.run("compute", factorial, n)
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "little")
    contract.emit("factorial", {"n": n}, ph, [],
                  hashlib.sha256(raw).hexdigest())


if __name__ == "__main__":
    main()
