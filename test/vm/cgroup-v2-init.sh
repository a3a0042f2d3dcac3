#!/bin/busybox sh
# /init of the cgroup v2 guest (src/node/cgroup-v2-vm.test.ts): a kernel booted with
# cgroup_no_v1=all, so memory is on the unified hierarchy, as on a v2 host. It runs ephemerad for
# a function cgroup limited by memory.max, and the paper's micro benchmark under the shim in it,
# with files larger than the limit; then prints what the host test checks, one "V2 key value" line
# each, and powers off. Everything it needs is in the initramfs (test/vm/mkinitramfs.sh).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t cgroup2 none /sys/fs/cgroup
say() { echo "V2 $*"; }
say controllers "$(cat /sys/fs/cgroup/cgroup.controllers)"
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
CG=/sys/fs/cgroup/fn
# The daemon in a cgroup of its own: the files it moves to disk land on this guest's tmpfs root,
# charged to their writer; on a host they go to a real disk.
mkdir $CG /sys/fs/cgroup/daemon
echo 32M > $CG/memory.max
echo $$ > /sys/fs/cgroup/daemon/cgroup.procs
mkdir -p /run/eph /scratch
ephemerad --rundir /run/eph --root /scratch --cgroup $CG --log /run/eph.log --debug &
DAEMON=$!
i=0
while [ ! -S /run/eph/shim.sock ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
say daemon_ready "$([ -S /run/eph/shim.sock ] && echo yes || echo no)"
say guard_high "$(cat $CG/memory.high)"
# The function joins its cgroup, then runs under the shim: 2 x 16 MiB of files in a 32 MiB limit.
sh -c "echo \$\$ > $CG/cgroup.procs && exec env LD_PRELOAD=/lib/libephemera.so EPHEMERA_SOCK=/run/eph/shim.sock EPHEMERA_ROOTS=/scratch /bin/microbench --dir /scratch --file-size 16777216 --ops 2000" > /run/mb.out 2> /run/mb.err
say microbench_status $?
say microbench "$(cat /run/mb.out)"
say microbench_err "$(head -c 300 /run/mb.err | tr '\n' ' ')"
say oom_kill "$(grep '^oom_kill ' $CG/memory.events | cut -d' ' -f2)"
say events "$(tr '\n' ' ' < $CG/memory.events)"
say peak "$(cat $CG/memory.peak)"
kill $DAEMON
i=0
while kill -0 $DAEMON 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
say daemon_log_budget "$(grep -m1 'budget ' /run/eph.log)"
say daemon_evictions "$(grep -c 'evicted inode' /run/eph.log)"
say daemon_guard "$(grep -m1 'oom guard' /run/eph.log)"
say done
poweroff -f
