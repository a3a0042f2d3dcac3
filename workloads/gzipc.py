"""FunctionBench's gzip compression function, ported to Python 3.

It writes a file of random bytes (the "disk" phase), then reads it line by line through a
buffered binary reader and feeds the lines to gzip, which writes the archive (the "compress"
phase), as FunctionBench's ``gz.writelines(f)`` does. The two latencies are reported separately,
as in the paper's Fig. 12. The archive's header carries mtime 0 so its digest is reproducible.

Like the original, the disk phase is one buffered ``write`` and ``close``, with no ``fsync``. Unlike
it, the random bytes are drawn before the clock starts (the original times ``os.urandom`` as part
of its disk latency) and from a seeded generator, so the digest is the same in every mode.
"""

import gzip
import hashlib
import os

import contract

PRESETS = {"tiny": 1, "small": 4, "full": 16}  # MiB
SEED = 20240502


def make_data(mb):
    # One buffer of incompressible bytes, allocated once as os.urandom's would be (a seeded
    # generator that builds a big integer first would need twice the memory for a moment).
    return hashlib.shake_256(f"{SEED}:{mb}".encode()).digest(mb << 20)


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def compress(src, dst):
    with open(src, "rb") as f, gzip.GzipFile(filename=dst, mode="wb", mtime=0) as gz:
        gz.writelines(f)


def main():
    p = contract.parser(__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, help="file size in MiB (default: from --size)")
    a = p.parse_args()
    mb = a.mb or PRESETS[a.size]
    if mb <= 0:
        raise SystemExit(f"gzipc: --mb {mb} must be positive")
    work = contract.prepare_scratch(a.scratch)
    src = os.path.join(work, "gzip-input.bin")
    dst = os.path.join(work, "gzip-output.gz")
    ph = contract.Phases(["disk", "compress"])
    data = ph.run("gen", make_data, mb)
    ph.run("disk", write_file, src, data)
    del data
    ph.run("compress", compress, src, dst)
    digest = contract.digest_files([dst])
    os.unlink(src)
    os.unlink(dst)
    contract.emit("gzip", {"mb": mb}, ph, ["gen"], digest)


if __name__ == "__main__":
    main()
