// freopen of a standard stream onto a file under a root, a C++ program's own dup2 onto fd 1/2, and
// one started with fd 1/2 on such a file.  glibc's static stdout/stdin/stderr
// objects must stay the streams: a FILE pointer saved before the freopen, and C++'s std::cout/cin/
// cerr (which hold glibc's objects), write and read through them alongside printf, and the bytes
// and their order must be those tmpfs gives.  The programs are compiled here (C++ with g++, C
// with gcc) and run by a Python driver on a real tmpfs and under `ephemera run`; the driver
// prints every file's bytes, and the two outputs must be identical.  Before the fix the shim
// redirected fd 1 into a memfd and gave `stdout` a new cookie stream: std::cout and the saved
// pointer kept writing through glibc's internal write, so their bytes landed in the memfd beyond
// the file's logical size and were lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { PYTHON, compileProgram, describe, requireBuilt, runOnTmpfsAndShim, scratch } from './lib/harness.mjs';

const CPP = String.raw`
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <unistd.h>
int main(int argc, char **argv)
{
    std::string d = argv[1];
    FILE *saved = stdout;
    if (!freopen((d + "/out.txt").c_str(), "w", stdout)) return 2;
    std::cout << "cout 1\n";
    printf("printf 2\n");
    fprintf(saved, "saved 3\n");
    std::cout << "cout 4" << std::endl;
    puts("puts 5");
    fputs("saved 6\n", saved);
    fflush(stdout);
    if (write(1, "write 7\n", 8) != 8) return 3;
    std::cout << "cout 8 " << 42 << ' ' << 3.5 << '\n';
    printf("printf 9 %s\n", stdout == saved ? "same stream" : "another stream");
    if (!freopen((d + "/out.txt").c_str(), "a", stdout)) return 4;
    std::cout << "appended 10\n";
    printf("appended 11\n");
    if (!freopen((d + "/in.txt").c_str(), "r", stdin)) return 5;
    std::string word, line;
    std::cin >> word;
    std::getline(std::cin, line);
    char rest[64] = "";
    if (scanf("%63s", rest) != 1) return 6;
    std::cout << "read [" << word << "][" << line << "][" << rest << "]\n";
    if (!freopen((d + "/err.txt").c_str(), "w", stderr)) return 7;
    std::cerr << "cerr 1\n";
    fprintf(stderr, "stderr 2\n");
    std::clog << "clog 3\n";
    std::cerr << "cerr 4" << std::endl;
    return 0;
}
`;

// A C++ program pointing fd 1 and 2 at a file itself (open + dup2, as "> log 2>&1" in-process),
// then a forked child redirecting its stdout before exec (the spawn pattern of C++ runtimes).
const CPP_DUP = String.raw`
#include <cstdio>
#include <fcntl.h>
#include <iostream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    std::string d = argv[1];
    int fd = open((d + "/dup.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || dup2(fd, 1) != 1 || dup2(fd, 2) != 2) return 2;
    close(fd);
    std::cout << "cout 1\n";
    printf("printf 2\n");
    std::cerr << "cerr 3\n";
    fprintf(stderr, "stderr 4\n");
    std::cout << "cout 5" << std::endl;
    fflush(stdout);
    if (write(1, "write 6\n", 8) != 8 || write(2, "write 7\n", 8) != 8) return 3;
    std::cout << "cout 8" << std::flush;
    std::cout << "\n";
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        int o = open((d + "/child.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        close(o);
        execl("/bin/echo", "echo", "from the child", (char *)nullptr);
        _exit(127);
    }
    int st = 0;
    waitpid(c, &st, 0);
    std::cout << "child " << WEXITSTATUS(st) << '\n';
    return 0;
}
`;

// A C++ program started with fd 1 and 2 already on a file under the root (the shell's "> f 2>&1").
const CPP_START = String.raw`
#include <cstdio>
#include <iostream>
int main()
{
    std::cout << "cout 1\n";
    printf("printf 2\n");
    std::cout << "cout 3" << std::endl;
    std::cerr << "cerr 4\n";
    fprintf(stderr, "stderr 5\n");
    for (int i = 0; i < 500; i++) {
        if (i % 2)
            std::cout << "line " << i << " cout\n";
        else
            printf("line %d printf\n", i);
    }
    return 0;
}
`;

const C = String.raw`
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    (void)argc;
    char p[4096];
    FILE *f = stdout;
    snprintf(p, sizeof p, "%s/c.txt", argv[1]);
    if (freopen(p, "w+", stdout) != f) return 2;
    fprintf(f, "saved pointer %d\n", 1);
    printf("printf %d\n", 2);
    for (int i = 0; i < 2000; i++)
        fprintf(i % 2 ? f : stdout, "line %04d %s\n", i, i % 2 ? "through f" : "through stdout");
    fwrite("fwrite\n", 1, 7, f);
    /* read back through the same stream */
    rewind(f);
    char line[128];
    if (!fgets(line, sizeof line, f) || strcmp(line, "saved pointer 1\n") != 0) return 3;
    fseek(f, 0, SEEK_END);
    fprintf(f, "end at %ld\n", ftell(f));
    snprintf(p, sizeof p, "%s/x.txt", argv[1]);
    if (freopen(p, "wx", stdout) != NULL) return 4; /* exists: EEXIST */
    return 0;
}
`;

const DRIVER = `
import os, subprocess, sys
d, progs = sys.argv[1], sys.argv[2:]
with open(os.path.join(d, "in.txt"), "w") as f:
    f.write("first rest of line one\\nsecond third\\n")
open(os.path.join(d, "x.txt"), "w").close()
for prog in progs[:-1]:
    r = subprocess.run([prog, d])
    print(os.path.basename(prog), "exit", r.returncode)
with open(os.path.join(d, "start.txt"), "w") as f:
    r = subprocess.run([progs[-1]], stdout=f, stderr=subprocess.STDOUT)
print(os.path.basename(progs[-1]), "exit", r.returncode)
for name in sorted(os.listdir(d)):
    p = os.path.join(d, name)
    with open(p, "rb") as f:
        data = f.read()
    print("==", name, os.stat(p).st_size, len(data))
    sys.stdout.write(data.decode())
`;

test('freopen and dup2 onto stdout/stdin/stderr: std::cout and saved FILE pointers match tmpfs byte for byte', async () => {
  requireBuilt(PYTHON);
  const sc = scratch('stdio-std-bin');
  try {
    const cpp = await compileProgram(sc, 'std_cpp', CPP, { cxx: true });
    const dup = await compileProgram(sc, 'std_dup', CPP_DUP, { cxx: true });
    const start = await compileProgram(sc, 'std_start', CPP_START, { cxx: true });
    const c = await compileProgram(sc, 'std_c', C);
    const { tmpfs, shim, sc: s2 } = await runOnTmpfsAndShim('stdio-std', DRIVER, { args: () => [cpp, c, dup, start] });
    const want = tmpfs.stdout.toString();
    assert.match(want, /std_cpp exit 0\nstd_c exit 0\nstd_dup exit 0\nstd_start exit 0\n/);
    assert.match(want, /saved 3\ncout 4\n/);
    assert.equal(shim.stdout.toString(), want, `under the shim the files differ from tmpfs\n${describe(shim)}`);
    s2.done();
  } finally {
    sc.done();
  }
});
