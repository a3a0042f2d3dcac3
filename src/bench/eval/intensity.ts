/**
 * I/O intensity as the paper defines it (section 5.1): the share p of system-call time spent in
 * file I/O calls (from `strace -c`), applied to the kernel time t_k of the run, over the whole CPU
 * time t_k + t_u:
 *
 *     intensity = t_k × p / (t_k + t_u)
 */

/** System calls that move file data or file metadata. Memory mapping and process calls are not I/O here. */
export const IO_SYSCALLS: ReadonlySet<string> = new Set([
  'read', 'write', 'pread64', 'pwrite64', 'readv', 'writev', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
  'lseek', 'open', 'openat', 'openat2', 'creat', 'close', 'close_range',
  'fsync', 'fdatasync', 'sync_file_range', 'ftruncate', 'truncate', 'fallocate', 'fadvise64',
  'stat', 'fstat', 'lstat', 'newfstatat', 'statx', 'access', 'faccessat', 'faccessat2',
  'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'rmdir',
  'getdents64', 'sendfile', 'copy_file_range', 'splice',
]);

/**
 * Calls that mostly wait for another process or for time to pass. `strace -c` charges them the
 * time they were blocked, which is neither kernel work nor I/O, so they are left out of the total
 * (otherwise a parent waiting for its MapReduce mappers would look like a kernel-bound program).
 */
export const WAIT_SYSCALLS: ReadonlySet<string> = new Set([
  'wait4', 'waitid', 'futex', 'poll', 'ppoll', 'select', 'pselect6', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2',
  'nanosleep', 'clock_nanosleep', 'pause', 'rt_sigsuspend', 'rt_sigtimedwait',
]);

export interface SyscallRow {
  readonly seconds: number;
  readonly calls: number;
}

/** p: the I/O share of syscall time and of syscall count, waiting calls excluded. */
export function ioShare(rows: Readonly<Record<string, SyscallRow>>): { byTime: number; byCalls: number } {
  let t = 0;
  let tIo = 0;
  let c = 0;
  let cIo = 0;
  for (const [name, r] of Object.entries(rows)) {
    if (WAIT_SYSCALLS.has(name)) continue;
    t += r.seconds;
    c += r.calls;
    if (IO_SYSCALLS.has(name)) {
      tIo += r.seconds;
      cIo += r.calls;
    }
  }
  return { byTime: t > 0 ? tIo / t : 0, byCalls: c > 0 ? cIo / c : 0 };
}

export function ioIntensity(kernelS: number, userS: number, p: number): number {
  const total = kernelS + userS;
  return total > 0 ? (kernelS * p) / total : 0;
}
