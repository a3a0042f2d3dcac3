// glibc functions that reach files through glibc's internal calls: realpath(3) (and
// canonicalize_file_name, the fortified __realpath_chk, Node's fs.realpathSync.native), the
// mkstemp family, tmpfile and popen (its shell inherited managed fds without their map, and read
// the memfd's whole capacity).  Before shim/intercept_libc.c, realpath of an in-memory file failed
// with ENOENT (glibc asked the kernel's readlink), and mkstemp/tmpfile created their files on
// disk.  A C program runs the same cases on a real tmpfs and under `ephemera run`; its output
// (paths relative to the directory) must be identical, and the files it made must have been in
// memory.  Also: a --root given through a symlink manages its files (it managed nothing before).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import { PYTHON, assertServedFromMemory, compileProgram, describe, ephemeraRun, run, runCmdOnTmpfsAndShim, sameOnTmpfsAndShim, scratch } from './lib/harness.mjs';

const C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *D;
static size_t DL;

static const char *rel(const char *p)
{
    static char bufs[2][PATH_MAX + 8];
    static int turn;
    char *b = bufs[turn++ & 1];
    if (strncmp(p, D, DL) == 0) {
        snprintf(b, PATH_MAX + 8, "D%s", p + DL);
        return b;
    }
    return p;
}

static void rp(const char *name)
{
    char buf[PATH_MAX];
    memset(buf, 0, sizeof buf);
    errno = 0;
    char *r = realpath(name, buf);
    if (r)
        printf("realpath %s -> %s\n", rel(name), rel(r));
    else
        printf("realpath %s -> error %s, prefix %s\n", rel(name), strerrorname_np(errno), rel(buf));
    char *m = canonicalize_file_name(name);
    printf("  canonicalize %s\n", m ? rel(m) : strerrorname_np(errno));
    free(m);
}

static void fill(int fd, const char *what)
{
    char b[256];
    int n = snprintf(b, sizeof b, "%s: the quick brown fox\n", what);
    for (int i = 0; i < 300; i++)
        if (write(fd, b, (size_t)n) != n)
            printf("write failed: %s\n", strerrorname_np(errno));
    struct stat st;
    fstat(fd, &st);
    printf("  size %lld mode %o\n", (long long)st.st_size, (unsigned)(st.st_mode & 07777));
    lseek(fd, 0, SEEK_SET);
    char back[64] = "";
    if (read(fd, back, 20) != 20)
        printf("  read failed\n");
    printf("  reads back [%.20s]\n", back);
}

static void templ(const char *kind, char *t, int fd, size_t suffix)
{
    size_t n = strlen(t);
    if (fd < 0) {
        printf("%s -> error %s\n", kind, strerrorname_np(errno));
        return;
    }
    int ok = n > 6 + suffix && strncmp(t + n - 6 - suffix, "XXXXXX", 6) != 0;
    printf("%s -> fd, name %s, X's replaced %d, exists %d, cloexec %d, append %d\n", kind,
           n > 6 + suffix ? "kept its length" : "short", ok, access(t, F_OK) == 0,
           (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, (fcntl(fd, F_GETFL) & O_APPEND) != 0);
    fill(fd, kind);
    close(fd);
}

int main(int argc, char **argv)
{
    (void)argc;
    D = argv[1];
    DL = strlen(D);
    char p[PATH_MAX], q[PATH_MAX];
#define P(fmt, ...) (snprintf(p, sizeof p, fmt, __VA_ARGS__), p)

    /* realpath */
    int fd = open(P("%s/file", D), O_CREAT | O_WRONLY, 0644);
    close(fd);
    mkdir(P("%s/dir", D), 0755);
    fd = open(P("%s/dir/inner", D), O_CREAT | O_WRONLY, 0644);
    close(fd);
    if (symlink("file", P("%s/link", D)) != 0)
        return 9;
    if (symlink("dir/../link", P("%s/chain", D)) != 0)
        return 9;
    snprintf(q, sizeof q, "%s/dir/inner", D);
    if (symlink(q, P("%s/abslink", D)) != 0)
        return 9;
    if (symlink("loop", P("%s/loop", D)) != 0)
        return 9;
    if (symlink("nowhere", P("%s/dangling", D)) != 0)
        return 9;
    const char *names[] = {"file", "./file", "dir/../file", "dir/inner", "dir//inner/", "link", "chain",
                           "abslink", "file/", "file/.", "file/..", "file/x", "nope", "nope/x", "dir/nope",
                           "loop", "dangling", "dir/.././/dir/inner", ".", "dir", "dir/", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        rp(names[i]); /* relative: the cwd is D */
        if (*names[i])
            rp(P("%s/%s", D, names[i]));
    }
    char *r = realpath(P("%s/file", D), NULL);
    printf("realpath(NULL buffer) %s\n", r ? rel(r) : strerrorname_np(errno));
    free(r);

    /* the mkstemp family */
    strcpy(q, D);
    strcat(q, "/tmp.XXXXXX");
    templ("mkstemp", q, mkstemp(q), 0);
    strcpy(q, D);
    strcat(q, "/tmpo.XXXXXX");
    templ("mkostemp", q, mkostemp(q, O_APPEND | O_CLOEXEC), 0);
    strcpy(q, D);
    strcat(q, "/tmps.XXXXXX.txt");
    templ("mkstemps", q, mkstemps(q, 4), 4);
    strcpy(q, D);
    strcat(q, "/tmpos.XXXXXXsfx");
    templ("mkostemps", q, mkostemps(q, 3, O_CLOEXEC), 3);
    strcpy(q, D);
    strcat(q, "/bad.XXXXX");
    templ("mkstemp (5 X's)", q, mkstemp(q), 0);
    strcpy(q, D);
    strcat(q, "/bad.XXXXXX.c");
    templ("mkstemps (suffix too long)", q, mkstemps(q, 9), 9);
    strcpy(q, D);
    strcat(q, "/nodir/t.XXXXXX");
    templ("mkstemp (no directory)", q, mkstemp(q), 0);
    strcpy(q, D);
    strcat(q, "/file/t.XXXXXX");
    templ("mkstemp (under a file)", q, mkstemp(q), 0);
    return 0;
}
`;

// Lists what the program left: file names (random parts masked) and sizes.
const LIST = String.raw`ls "$1" | sed 's/\.[A-Za-z0-9]\{6\}/.??????/' | sort; wc -c "$1"/tmp* | sed "s#$1#D#" | sed 's/\.[A-Za-z0-9]\{6\}/.??????/' | sort`;

function compile(sc, name, source) {
  return compileProgram(sc, name, source, { flags: ['-O1', '-Wall', '-Werror', '-D_FORTIFY_SOURCE=2'] });
}

test('realpath, canonicalize_file_name and the mkstemp family on in-memory files match tmpfs', async () => {
  const sc = scratch('libc-names-bin');
  try {
    const bin = await compile(sc, 'names', C);
    const res = await runCmdOnTmpfsAndShim('libc-names', 'sh', (dir) => ['-c', `"$0" "$1" && ${LIST}`, bin, dir]);
    const want = res.tmpfs.stdout.toString();
    assert.match(want, /realpath D\/chain -> D\/file\n/);
    assert.match(want, /realpath file\/ -> error ENOTDIR/);
    assert.match(want, /mkstemps -> fd, name kept its length, X's replaced 1, exists 1/);
    assert.equal(res.shim.stdout.toString(), want, `under the shim the results differ from tmpfs\n${describe(res.shim)}`);
    // The four temporary files and the two regular ones were made in memory.
    assert.ok(res.shim.stats.files_in_memory_peak >= 6, `files_in_memory_peak ${res.shim.stats.files_in_memory_peak}: mkstemp's files went to disk`);
    assertServedFromMemory(res.shim.stats, 'mkstemp files');
    res.sc.done();
  } finally {
    sc.done();
  }
});

test("Node's fs.realpathSync.native and fs.promises.realpath see in-memory files", async () => {
  const sc = scratch('libc-names-node');
  const root = sc.sub('root');
  const script = `
const fs = require('fs'), path = require('path');
const d = process.argv[1];
fs.writeFileSync(path.join(d, 'f'), 'x'.repeat(100000));
fs.symlinkSync('f', path.join(d, 'l'));
const out = [fs.realpathSync.native(path.join(d, 'f')), fs.realpathSync.native(path.join(d, 'l')), fs.readFileSync(path.join(d, 'l')).length];
try { fs.realpathSync.native(path.join(d, 'f') + '/'); } catch (e) { out.push(e.code); }
fs.promises.realpath(path.join(d, 'l')).then((p) => { out.push(p); console.log(JSON.stringify(out)); });`;
  const r = await ephemeraRun({ root, cmd: process.execPath, args: ['-e', script, root], statsDir: sc.dir });
  assert.equal(r.status, 0, describe(r));
  assert.deepEqual(JSON.parse(r.stdout.toString()), [join(root, 'f'), join(root, 'f'), 100000, 'ENOTDIR', join(root, 'f')]);
  assert.ok(r.stats.files_in_memory_peak >= 1, `files_in_memory_peak ${r.stats.files_in_memory_peak}`);
  sc.done();
});

test('tmpfile() in a managed /tmp is an in-memory file', async () => {
  const sc = scratch('libc-tmpfile');
  try {
    const bin = await compile(sc, 'tmpf', String.raw`
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
int main(void)
{
    FILE *f = tmpfile();
    if (!f) { perror("tmpfile"); return 2; }
    for (int i = 0; i < 5000; i++) fprintf(f, "line %d\n", i);
    rewind(f);
    char b[64];
    int n = 0;
    while (fgets(b, sizeof b, f)) n++;
    struct stat st;
    fstat(fileno(f), &st);
    printf("%d lines, %lld bytes, links %ld, in memory %d\n", n, (long long)st.st_size, (long)st.st_nlink,
           (int)((st.st_ino >> 44) & 1));
    return fclose(f) != 0;
}`);
    const plain = await run(bin, []);
    assert.equal(plain.stdout.toString(), '5000 lines, 48890 bytes, links 0, in memory 0\n', describe(plain));
    const root = sc.sub('root');
    const r = await ephemeraRun({ roots: [root, '/tmp'], discard: true, cmd: bin, statsDir: sc.dir });
    assert.equal(r.status, 0, describe(r));
    assert.equal(r.stdout.toString(), '5000 lines, 48890 bytes, links 0, in memory 1\n');
    assert.ok(r.stats.fast_writes > 0 && r.stats.files_in_memory_peak >= 1, JSON.stringify(r.stats));
  } finally {
    sc.done();
  }
});

// mkdtemp(3) makes its directory with glibc's internal mkdir, which the kernel answers alone: below a
// directory made in memory (nothing of it on disk) it failed with ENOENT, and npm's cache
// (`_cacache/tmp/XXXXXX`, Node's fs.mkdtemp) lost every package it unpacked.  No symlink here, so
// the directories are made in memory.  The Node part does what `npm install` does: mkdir -p, a
// temporary directory in the cache, write, rename into place, readdir, remove the temporary one.
const MKDTEMP = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
static const char *D;
static void one(const char *what, const char *rel)
{
    char t[4096];
    snprintf(t, sizeof t, "%s/%s", D, rel);
    char *r = mkdtemp(t);
    struct stat st;
    if (!r) {
        printf("%s -> %s\n", what, strerrorname_np(errno));
        return;
    }
    int dir = stat(r, &st) == 0 && S_ISDIR(st.st_mode);
    printf("%s -> a directory %d, mode %o, X's replaced %d\n", what, dir, (unsigned)(st.st_mode & 07777), !strstr(r, "XXXXXX"));
    char f[4200];
    snprintf(f, sizeof f, "%s/inside", r);
    int fd = open(f, O_CREAT | O_WRONLY | O_EXCL, 0644);
    printf("  a file inside: %s\n", fd >= 0 && write(fd, "x", 1) == 1 ? "made" : strerrorname_np(errno));
    if (fd >= 0) close(fd);
}
int main(int argc, char **argv)
{
    (void)argc;
    D = argv[1];
    char p[4096];
    snprintf(p, sizeof p, "%s/a", D);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/a/b", D);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/file", D);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    one("mkdtemp in the root", "t.XXXXXX");
    one("mkdtemp in a directory made here", "a/t.XXXXXX");
    one("mkdtemp two levels down", "a/b/XXXXXX");
    one("mkdtemp (no directory)", "a/nodir/XXXXXX");
    one("mkdtemp (under a file)", "file/XXXXXX");
    one("mkdtemp (5 X's)", "a/bad.XXXXX");
    return 0;
}`;

const NPMLIKE = `
const fs = require('fs'), path = require('path');
const d = process.argv[1], out = [];
const cache = path.join(d, '.cache', '_cacache');
fs.mkdirSync(path.join(cache, 'tmp'), { recursive: true });
fs.mkdirSync(path.join(d, 'app', 'node_modules', '.bin'), { recursive: true });
for (const name of ['alpha', 'beta']) {
  const tmp = fs.mkdtempSync(path.join(cache, 'tmp', 'x'));
  fs.mkdirSync(path.join(tmp, 'lib'));
  fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name }));
  fs.writeFileSync(path.join(tmp, 'lib', 'index.js'), 'module.exports = ' + JSON.stringify(name) + ';\\n');
  fs.renameSync(tmp, path.join(d, 'app', 'node_modules', name));
}
const t2 = fs.mkdtempSync(path.join(cache, 'tmp', 'y'));
fs.writeFileSync(path.join(t2, 'junk'), 'j');
fs.rmSync(t2, { recursive: true });
out.push(fs.readdirSync(path.join(d, 'app', 'node_modules')).sort().join(','));
out.push(fs.readdirSync(path.join(cache, 'tmp')).length);
for (const name of ['alpha', 'beta']) out.push(require(path.join(d, 'app', 'node_modules', name, 'lib', 'index.js')));
fs.promises.mkdtemp(path.join(cache, 'tmp', 'z')).then((p) => { out.push(fs.statSync(p).isDirectory()); console.log(JSON.stringify(out)); });`;

test('mkdtemp, and an npm-like unpack through fs.mkdtemp, below directories made in memory match tmpfs', async () => {
  const sc = scratch('libc-mkdtemp-bin');
  try {
    const bin = await compile(sc, 'mkdt', MKDTEMP);
    const script = `"$0" "$1" && "$2" -e "$3" "$1" && find "$1" | sed "s#$1#D#; s/\\.[A-Za-z0-9]\\{6\\}$/.??????/; s#/[A-Za-z0-9]\\{6\\}$#/??????#; s#/\\([xyz]\\)[A-Za-z0-9]\\{6\\}#/\\1??????#" | sort`;
    const res = await runCmdOnTmpfsAndShim('libc-mkdtemp', 'sh', (dir) => ['-c', script, bin, dir, process.execPath, NPMLIKE]);
    const want = res.tmpfs.stdout.toString();
    assert.match(want, /mkdtemp two levels down -> a directory 1, mode 700, X's replaced 1\n {2}a file inside: made\n/);
    assert.match(want, /mkdtemp \(no directory\) -> ENOENT\n/);
    assert.match(want, /\["\.bin,alpha,beta",0,"alpha","beta",true\]/);
    assert.equal(res.shim.stdout.toString(), want, `under the shim the results differ from tmpfs\n${describe(res.shim)}`);
    assert.ok(res.shim.stats.dirs_made_in_memory > 0, `dirs_made_in_memory ${res.shim.stats.dirs_made_in_memory}: the directories went to disk, so nothing was tested`);
    assertServedFromMemory(res.shim.stats, 'mkdtemp');
    res.sc.done();
  } finally {
    sc.done();
  }
});

// Names only the kernel can make (a fifo, a node, a unix socket) below directories made in memory, one
// holding a file and one empty: glibc's mkfifo calls its internal mknodat and bind is a system call,
// so the kernel's walk met no directory there (ENOENT) until the shim gave the directory its twin.
test('mkfifo, mknod and bind below directories made in memory match tmpfs', async (t) => {
  const py = `import errno, os, socket, stat, sys
def bind(p):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(p); print('bind', p, 'ok', stat.S_ISSOCK(os.stat(p).st_mode))
    except OSError as e:
        print('bind', p, errno.errorcode[e.errno])
    s.close()
for p in sys.argv[1:]: bind(p)`;
  const { stats } = await sameOnTmpfsAndShim(
    t,
    'libc-nodes',
    `mkdir full empty && echo x > full/f
mkfifo full/p && stat -c '%n %F' full/p && (echo through > full/p &) && cat full/p
mkfifo empty/p && stat -c '%n %F' empty/p
mknod full/q p && stat -c '%n %F' full/q
mkfifo full/f 2>&1 | sed 's/^.*: //'; mkfifo nodir/p 2>&1 | sed 's/^.*: //'
${PYTHON} -c "${py}" full/s empty/s full/f nodir/s full/s
ls full empty | cat; cat full/f; rm -r full empty; ls`,
  );
  assert.ok(stats.dirs_made_in_memory > 0, `dirs_made_in_memory ${stats.dirs_made_in_memory}: the directories went to disk, so nothing was tested`);
});

test('a --root given through a symlink keeps its files in memory', async () => {
  const sc = scratch('libc-root-link');
  const real = sc.sub('real');
  const link = join(sc.dir, 'link');
  symlinkSync(real, link);
  mkdirSync(join(real, 'sub'));
  const r = await ephemeraRun({
    root: link,
    cmd: 'sh',
    args: ['-c', 'for i in 1 2 3; do echo "$i" > "$0/f$i"; done; cat "$0"/f* "$1"/f2; echo x > "$0/sub/g"; cat "$1/sub/g"', link, real],
    statsDir: sc.dir,
  });
  assert.equal(r.status, 0, describe(r));
  assert.equal(r.stdout.toString(), '1\n2\n3\n2\nx\n');
  assert.ok(r.stats.files_in_memory_peak >= 4, `files_in_memory_peak ${r.stats.files_in_memory_peak}: the files went to disk`);
  assert.equal(readFileSync(join(real, 'sub', 'g'), 'utf8'), 'x\n', 'written back to the canonical directory at exit');
  sc.done();
});

const POPEN = String.raw`
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    (void)argc;
    const char *d = argv[1];
    char cmd[1024], line[256];
    /* before any managed fd: glibc's own popen, closed by pclose */
    FILE *p = popen("echo first; exit 3", "r");
    if (!p || !fgets(line, sizeof line, p)) return 2;
    printf("glibc popen: %s  pclose %d\n", strtok(line, "\n"), pclose(p));
    snprintf(cmd, sizeof cmd, "%s/in.txt", d);
    int fd = open(cmd, O_RDWR | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < 100; i++)
        if (write(fd, "hello world\n", 12) != 12) return 3;
    lseek(fd, 600, SEEK_SET);
    /* the shell inherits fd: its bytes, its size, its offset */
    snprintf(cmd, sizeof cmd, "wc -c <&%d; wc -c < %s/in.txt; gzip -c < %s/in.txt > %s/out.gz; wc -c < %s/out.gz", fd, d, d, d, d);
    p = popen(cmd, "r");
    while (p && fgets(line, sizeof line, p))
        printf("child: %s", line);
    printf("pclose %d, offset after %ld\n", p ? pclose(p) : -9, (long)lseek(fd, 0, SEEK_CUR));
    /* two writers at once: the second child must not hold the first one's pipe open */
    snprintf(cmd, sizeof cmd, "cat > %s/a.txt", d);
    FILE *a = popen(cmd, "we");
    snprintf(cmd, sizeof cmd, "cat > %s/b.txt; exit 5", d);
    FILE *b = popen(cmd, "w");
    if (!a || !b) return 4;
    fputs("to a\n", a);
    fputs("to b\n", b);
    printf("pclose a %d\n", pclose(a));
    printf("pclose b %d\n", pclose(b));
    errno = 0;
    printf("mode rw: %s\n", popen("true", "rw") ? "accepted" : strerror(errno));
    snprintf(cmd, sizeof cmd, "cat %s/a.txt %s/b.txt", d, d);
    p = popen(cmd, "r");
    while (p && fgets(line, sizeof line, p))
        printf("files: %s", line);
    printf("pclose %d\n", p ? pclose(p) : -9);
    return 0;
}
`;

test('popen with a managed fd open: the shell inherits it as tmpfs would give it', async () => {
  const sc = scratch('libc-popen-bin');
  try {
    const bin = await compile(sc, 'popen', POPEN);
    const res = await runCmdOnTmpfsAndShim('libc-popen', bin, (dir) => [dir]);
    const want = res.tmpfs.stdout.toString();
    assert.match(want, /child: 600\nchild: 1200\n/);
    assert.match(want, /pclose a 0\npclose b 1280\n/);
    assert.equal(res.shim.stdout.toString(), want, describe(res.shim));
    assert.ok(res.shim.stats.files_in_memory_peak >= 3, JSON.stringify(res.shim.stats));
    res.sc.done();
  } finally {
    sc.done();
  }
});

// A program built against glibc < 2.33 calls mknod through __xmknod and __xmknodat (the device by
// pointer, behind a version number). This one binds to those old symbols as such a binary does
// (.symver), so the shim must export them: before, a fifo over a file in memory was made by the
// kernel (the name looked free on disk) and one below a directory made in memory failed ENOENT.
const XMKNOD = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int old_xmknod(int ver, const char *path, mode_t mode, dev_t *dev);
int old_xmknodat(int ver, int dirfd, const char *path, mode_t mode, dev_t *dev);
__asm__(".symver old_xmknod, __xmknod@GLIBC_2.2.5");
__asm__(".symver old_xmknodat, __xmknodat@GLIBC_2.4");

static void say(const char *what, int r)
{
    struct stat st;
    if (r == 0 && lstat(what, &st) == 0)
        printf("%s: made, %s\n", what, S_ISFIFO(st.st_mode) ? "fifo" : S_ISREG(st.st_mode) ? "file" : "other");
    else
        printf("%s: %s\n", what, r == 0 ? "made, but no stat" : strerrorname_np(errno));
}

int main(int argc, char **argv)
{
    if (argc != 2 || chdir(argv[1]) != 0)
        return 2;
    dev_t dev = 0;
    int fd = open("f", O_CREAT | O_WRONLY, 0644);
    if (fd < 0 || write(fd, "in memory\n", 10) != 10 || close(fd) != 0 || mkdir("d", 0755) != 0)
        return 3;
    say("p", old_xmknod(0, "p", S_IFIFO | 0644, &dev));
    errno = 0;
    say("f", old_xmknod(0, "f", S_IFIFO | 0644, &dev));
    say("d/p", old_xmknod(0, "d/p", S_IFIFO | 0600, &dev));
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    say("d/q", old_xmknodat(0, dfd, "q", S_IFIFO | 0600, &dev));
    say("d/p", old_xmknodat(0, dfd, "p", S_IFIFO | 0600, &dev));
    close(dfd);
    say("nodir/p", old_xmknod(0, "nodir/p", S_IFIFO | 0600, &dev));
    say("v", old_xmknod(1, "v", S_IFIFO | 0600, &dev));
    return 0;
}
`;

test('mknod through the pre-2.33 ABI (__xmknod, __xmknodat) matches tmpfs', async () => {
  const sc = scratch('libc-xmknod-bin');
  try {
    const bin = await compile(sc, 'xmknod', XMKNOD);
    const res = await runCmdOnTmpfsAndShim('libc-xmknod', bin, (dir) => [dir]);
    const want = res.tmpfs.stdout.toString();
    assert.match(want, /^p: made, fifo\nf: EEXIST\nd\/p: made, fifo\nd\/q: made, fifo\nd\/p: EEXIST\nnodir\/p: ENOENT\nv: EINVAL\n$/);
    assert.equal(res.shim.stdout.toString(), want, `under the shim the results differ from tmpfs\n${describe(res.shim)}`);
    assert.ok(res.shim.stats.files_in_memory_peak >= 1, `files_in_memory_peak ${res.shim.stats.files_in_memory_peak}: f went to disk, so nothing was tested`);
    res.sc.done();
  } finally {
    sc.done();
  }
});
