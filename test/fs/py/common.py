"""Helpers for the Python workloads run under the shim: deterministic data and loud checks."""
import hashlib
import json
import random
import sys


def rng(seed):
    return random.Random(seed)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def check(cond, what):
    """Fail with a message that says what was expected (assert would vanish under -O)."""
    if not cond:
        raise SystemExit(f"CHECK FAILED: {what}")


def report(result):
    """The one line the node test parses."""
    print("RESULT " + json.dumps(result, sort_keys=True))
    sys.stdout.flush()
