# The workload of test/fs/keeper.test.mjs, run under `ephemera run`: writers in several processes
# create, write, append to, overwrite, rename and unlink files in the managed root (some stay in
# memory, a small budget evicts others) while the parent kills ephemerad with SIGKILL, KILLS
# times.  Each writer keeps a model of what every file must hold and writes it, as sha256 per
# name, to OUT/expect-W.json outside the root; the test compares the disk with it after the run.
# After the kills the parent checks, through the new daemon, that a new file is in memory again
# and that files made before the kills read back whole.  Exit 7 when all of that held.
import hashlib, json, os, signal, sys, time

from keeperproc import daemons

root, out, kills, writers, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
interval = float(sys.argv[6]) if len(sys.argv) > 6 else 0.4
IN_MEMORY = 1 << 44  # st_ino of an in-memory file (EPH_INO_TAG)


def data(w, r, k, n):
    seed = hashlib.sha256(b'%d-%d-%d' % (w, r, k)).digest()
    return (seed * (n // len(seed) + 1))[:n]


def writer(w):
    model = {}
    logname = 'log-%d' % w
    for r in range(rounds):
        name = 'w%d-r%d' % (w, r)
        size = 1000 + (r * 7919 + w * 104729) % 150000
        body = data(w, r, 0, size)
        with open(os.path.join(root, name), 'wb') as f:
            for i in range(0, size, 16384):
                f.write(body[i:i + 16384])
        model[name] = body
        line = b'writer %d round %d\n' % (w, r)
        with open(os.path.join(root, logname), 'ab') as f:
            f.write(line)
        model[logname] = model.get(logname, b'') + line
        if r % 3 == 1:  # overwrite the middle of an earlier file in place
            old = 'w%d-r%d' % (w, r - 1)
            patch = data(w, r, 1, 3000)
            fd = os.open(os.path.join(root, old), os.O_RDWR)
            off = len(model[old]) // 3
            os.pwrite(fd, patch, off)
            os.close(fd)
            b = bytearray(model[old])
            b[off:off + len(patch)] = patch
            b = bytes(b[:max(len(model[old]), off + len(patch))])
            model[old] = b
        if r % 4 == 2:  # write a temporary and rename it over a final name
            tmp, final = 'w%d-tmp' % w, 'w%d-final' % w
            body2 = data(w, r, 2, 20000 + r * 13)
            with open(os.path.join(root, tmp), 'wb') as f:
                f.write(body2)
            os.rename(os.path.join(root, tmp), os.path.join(root, final))
            model[final] = body2
        if r % 5 == 4:  # unlink an earlier file
            gone = 'w%d-r%d' % (w, r - 2)
            os.unlink(os.path.join(root, gone))
            del model[gone]
        # Verify what this writer made a few rounds ago, through whichever daemon runs now.
        if r >= 3:
            back = 'w%d-r%d' % (w, r - 3)
            if back in model:
                with open(os.path.join(root, back), 'rb') as f:
                    got = f.read()
                if got != model[back]:
                    print('writer %d: %s read back %d bytes, expected %d' % (w, back, len(got), len(model[back])), flush=True)
                    os._exit(3)
    with open(os.path.join(out, 'expect-%d.json' % w), 'w') as f:
        json.dump({k: hashlib.sha256(v).hexdigest() for k, v in model.items()}, f)
    os._exit(0)


def wait_for_new_daemon(old, ms=20000):
    end = time.time() + ms / 1000
    while time.time() < end:
        now = [p for p in daemons() if p != old]
        if now:
            return now[0]
        time.sleep(0.01)
    print('no new ephemerad within %d ms' % ms, flush=True)
    sys.exit(3)


first = daemons()
if len(first) != 1:
    print('expected one ephemerad child of the keeper, found %r' % first, flush=True)
    sys.exit(3)
early = os.path.join(root, 'early')
early_body = data(99, 0, 0, 50000)
with open(early, 'wb') as f:
    f.write(early_body)
held = os.open(early, os.O_RDWR)  # open across the kills

kids = []
for w in range(writers):
    pid = os.fork()
    if pid == 0:
        writer(w)
    kids.append(pid)

daemon = first[0]
for k in range(kills):
    time.sleep(interval)
    os.kill(daemon, signal.SIGKILL)
    daemon = wait_for_new_daemon(daemon)

bad = 0
for pid in kids:
    _, st = os.waitpid(pid, 0)
    if st != 0:
        print('writer pid %d ended with %d' % (pid, st), flush=True)
        bad += 1

# After the kills: the held fd still writes, old files read back, new files go to memory.
os.pwrite(held, b'after', 0)
os.close(held)
early_body = b'after' + early_body[5:]
with open(early, 'rb') as f:
    if f.read() != early_body:
        print('early: wrong bytes after the restart', flush=True)
        bad += 1
fresh = os.path.join(root, 'fresh')
with open(fresh, 'wb') as f:
    f.write(b'new after restart\n')
if os.stat(fresh).st_ino < IN_MEMORY:
    print('fresh: created after the restart but not in memory (st_ino %d)' % os.stat(fresh).st_ino, flush=True)
    bad += 1
with open(os.path.join(out, 'expect-main.json'), 'w') as f:
    json.dump({'early': hashlib.sha256(early_body).hexdigest(),
               'fresh': hashlib.sha256(b'new after restart\n').hexdigest()}, f)
sys.exit(3 if bad else 7)
