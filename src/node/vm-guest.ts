/**
 * Test support for the cgroup v2 guest tests (cgroup-v2-vm.test.ts, cgroup-v2-node-vm.test.ts):
 * what they need on the host, the initramfs (test/vm/mkinitramfs.sh) and one boot of Debian's
 * cloud kernel under QEMU with `cgroup_no_v1=all`, bounded. Test support only.
 *
 * QEMU emulates the CPU (TCG): this machine's /dev/kvm opens, but a nested KVM guest hangs before
 * its kernel prints anything.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This file runs from build/js/node/: the checkout is three levels up. */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const BUILD = join(REPO, 'build');
const KERNEL = join(BUILD, 'vm', 'vmlinuz');
const QEMU = '/usr/bin/qemu-system-x86_64';

/** The node:test `skip` for a guest test that needs `files` besides QEMU and the kernel: false, or why. */
export function guestSkip(files: readonly string[]): string | false {
  const missing = [KERNEL, QEMU, '/bin/busybox', ...files].filter((f) => !existsSync(f));
  return missing.length > 0 ? `needs ${missing.join(', ')} (scripts/deps.sh installs QEMU and fetches the guest kernel)` : false;
}

/** Builds the guest's initramfs at `out` (mkinitramfs.sh's `mode`: none, or `node`); throws with its stderr. */
export function makeInitramfs(out: string, mode?: 'node'): void {
  const mk = spawnSync('sh', [join(REPO, 'test', 'vm', 'mkinitramfs.sh'), BUILD, out, ...(mode === undefined ? [] : [mode])], { encoding: 'utf8', timeout: 60_000 });
  if (mk.status !== 0) throw new Error(`mkinitramfs.sh failed (${mk.signal ?? `status ${String(mk.status)}`}): ${mk.stderr}`);
}

/** Boots the guest with `memoryMiB` of RAM; resolves with its console output once it powers off, or rejects after `ms`. */
export function bootGuest(initramfs: string, memoryMiB: number, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['-accel', 'tcg', '-m', String(memoryMiB), '-smp', '1', '-nographic', '-no-reboot', '-kernel', KERNEL, '-initrd', initramfs];
    // loglevel=1: only a panic reaches the console. The kernel writes its messages (an OOM kill in
    // the guest is an error-level one) straight to the serial port, in the middle of a line the
    // guest's script is writing, which then no longer parses (a make test under load met it).
    const q = spawn(QEMU, [...args, '-append', 'console=ttyS0 panic=-1 cgroup_no_v1=all quiet loglevel=1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    q.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
    // QEMU's own messages apart: a chunk of them could land between two chunks of one console line.
    q.stderr.on('data', (b: Buffer) => (err += b.toString('latin1')));
    const timer = setTimeout(() => {
      q.kill('SIGKILL');
      reject(new Error(`the guest did not power off within ${String(ms / 1000)} s; its console:\n${out.slice(-3000)}\nQEMU said: ${err.slice(-1000)}`));
    }, ms);
    q.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    q.on('exit', () => {
      clearTimeout(timer);
      resolve(err === '' ? out : `${out}\nQEMU said: ${err}`);
    });
  });
}
