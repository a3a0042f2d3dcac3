// Extended attributes of in-memory files, compared with a real tmpfs: a Python script sets, gets,
// lists and removes user.* and trusted.* attributes by path, through a symlink (l* calls), and on
// an fd; checks errno for missing names, XATTR_CREATE/XATTR_REPLACE, ERANGE on a small buffer
// (through libc with ctypes: Python's own calls retry with a bigger one), E2BIG, ENOTDIR, ENOENT
// and an unknown namespace; then runs a static binary, which makes the daemon move every file to
// disk (materialisation), and reads them back there.  Before the fix an in-memory file had none
// (getxattr ENODATA, setxattr went to the kernel on a path with no file: ENOENT), and before the
// daemon copied them, materialisation lost them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { PYTHON, TEST_BIN, assertServedFromMemory, requireBuilt, runOnTmpfsAndShim } from './lib/harness.mjs';

const SCRIPT = `
import ctypes, errno, os, subprocess, sys
d, static_reader = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
p, q = os.path.join(d, "f"), os.path.join(d, "lnk")
with open(p, "w") as f:
    f.write("data" * 1000)
with open(p) as f:
    assert f.read() == "data" * 1000
def e(f, *a, **k):
    try:
        r = f(*a, **k)
        return sorted(r) if isinstance(r, list) else repr(r)
    except OSError as x:
        return errno.errorcode[x.errno]
def raw(fn, *a):
    r = fn(*a)
    return "%d %s" % (r, errno.errorcode.get(ctypes.get_errno(), "0") if r < 0 else "")
out = []
def log(name, v):
    out.append("%s: %s" % (name, v))
log("empty list", e(os.listxattr, p))
log("missing", e(os.getxattr, p, "user.missing"))
log("set a", e(os.setxattr, p, "user.a", b"hello"))
log("set b", e(os.setxattr, p, "user.b", b"x" * 300))
log("set empty", e(os.setxattr, p, "user.empty", b""))
log("get a", e(os.getxattr, p, "user.a"))
log("get empty", e(os.getxattr, p, "user.empty"))
log("list", e(os.listxattr, p))
log("create existing", e(os.setxattr, p, "user.a", b"v", os.XATTR_CREATE))
log("replace missing", e(os.setxattr, p, "user.c", b"v", os.XATTR_REPLACE))
log("replace", e(os.setxattr, p, "user.a", b"v2", os.XATTR_REPLACE))
log("create", e(os.setxattr, p, "user.c", b"c", os.XATTR_CREATE))
log("get replaced", e(os.getxattr, p, "user.a"))
log("remove b", e(os.removexattr, p, "user.b"))
log("remove b again", e(os.removexattr, p, "user.b"))
buf = ctypes.create_string_buffer(2)
log("getxattr ERANGE", raw(libc.getxattr, p.encode(), b"user.a", buf, ctypes.c_size_t(1)))
log("getxattr size 0", raw(libc.getxattr, p.encode(), b"user.a", None, ctypes.c_size_t(0)))
log("listxattr ERANGE", raw(libc.listxattr, p.encode(), buf, ctypes.c_size_t(2)))
log("listxattr size 0", raw(libc.listxattr, p.encode(), None, ctypes.c_size_t(0)))
log("lgetxattr ERANGE", raw(libc.lgetxattr, p.encode(), b"user.a", buf, ctypes.c_size_t(1)))
os.symlink("f", q)
log("via symlink", e(os.getxattr, q, "user.a"))
log("symlink itself", e(os.getxattr, q, "user.a", follow_symlinks=False))
log("lsetxattr user on a symlink", e(os.setxattr, q, "user.l", b"1", follow_symlinks=False))
log("llist", e(os.listxattr, p, follow_symlinks=False))
log("lremove", e(os.removexattr, p, "user.c", follow_symlinks=False))
fd = os.open(p, os.O_RDONLY)
log("fget", e(os.getxattr, fd, "user.a"))
log("fset", e(os.setxattr, fd, "user.fd", b"via fd"))
log("flist", e(os.listxattr, fd))
log("fremove", e(os.removexattr, fd, "user.fd"))
log("fgetxattr ERANGE", raw(libc.fgetxattr, fd, b"user.a", buf, ctypes.c_size_t(1)))
os.close(fd)
log("trusted", e(os.setxattr, p, "trusted.t", b"tt"))
log("get trusted", e(os.getxattr, p, "trusted.t"))
log("unknown namespace", e(os.setxattr, p, "bogus.t", b"tt"))
log("trailing slash", e(os.getxattr, p + "/", "user.a"))
log("missing file", e(os.getxattr, os.path.join(d, "nope"), "user.a"))
log("set on missing file", e(os.setxattr, os.path.join(d, "nope"), "user.a", b"1"))
log("below a file", e(os.getxattr, os.path.join(d, "f/x"), "user.a"))
log("value too big", e(os.setxattr, p, "user.big", b"z" * 70000))
log("name too long", e(os.setxattr, p, "user." + "n" * 300, b"z"))
c0 = os.stat(p).st_ctime_ns
os.setxattr(p, "user.ct", b"1")
log("ctime moves", os.stat(p).st_ctime_ns >= c0)
os.setxattr(p, "user.large", bytes(range(256)) * 8)  # > 512: the daemon's second buffer; ext4 holds at most a block of them
os.rename(p, os.path.join(d, "g"))
p = os.path.join(d, "g")
log("after rename", e(os.getxattr, p, "user.a"))
with open(os.path.join(d, "h"), "w") as f:
    f.write("h")
os.setxattr(os.path.join(d, "h"), "user.h", b"on h")
# A static binary cannot load the shim: every file moves to disk first, attributes included.
r = subprocess.run([static_reader, p], capture_output=True)
log("static reader", r.returncode)
log("after the move", e(os.listxattr, p))
log("large after the move", e(lambda: len(os.getxattr(p, "user.large"))))
log("h after the move", e(os.getxattr, os.path.join(d, "h"), "user.h"))
log("set after the move", e(os.setxattr, p, "user.z", b"z"))
log("get after the move", e(os.getxattr, p, "user.z"))
print("\\n".join(out))
`;

test('extended attributes of in-memory files behave as on tmpfs and survive the move to disk', async (t) => {
  const reader = join(TEST_BIN, 'static_reader');
  requireBuilt(PYTHON, reader);
  const { tmpfs, shim, sc } = await runOnTmpfsAndShim('xattr', SCRIPT, { args: () => [reader] });
  const want = tmpfs.stdout.toString();
  assert.match(want, /get a: b'hello'/);
  assert.equal(shim.stdout.toString(), want);
  assertServedFromMemory(shim.stats, 'xattr');
  assert.ok(shim.stats.materialisations > 0, 'the static binary did not make the daemon move the files');
  t.diagnostic(`materialisations=${shim.stats.materialisations} evictions=${shim.stats.evictions}`);
  sc.done();
});
