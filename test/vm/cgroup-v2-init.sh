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

# The guard lease on the real controller (daemon/guardlease.c). A second function cgroup, guarded
# the way the agent guards one on v2 (memory.high = memory.max - 8 MiB, src/guard/arm.ts), with
# its daemon in it and the cgroup tree read-only to that daemon, as in a container (follow mode).
# A process stands in for the agent: it holds the lease FIFO's write end. The workload is a heap
# with nothing to evict that wants more than the limit (busybox dd reads 64 MiB of /dev/zero into
# one buffer): above memory.high the kernel throttles it; at memory.max, tens of seconds of
# throttling later, the kernel itself would kill it. While the lease is held the stall is left
# alone; once its holder is SIGKILLed the daemon kills the workload after its 1 s bound.
ms() { read -r up _ < /proc/uptime; echo $(( ${up%.*} * 1000 + 1${up#*.} * 10 - 1000 )); }
CGL=/sys/fs/cgroup/lease
HIGH=$(( 40 << 20 ))
mkdir $CGL /run/lease /scratch-lease /scratch-lease/w /scratch-lease/s /ref-lease /ref-stall /sys/fs/cgroup/writer
echo $(( 48 << 20 )) > $CGL/memory.max
echo $HIGH > $CGL/memory.high
mkfifo /run/lease/guard.lease
sleep 600 3<> /run/lease/guard.lease &
HOLDER=$!
unshare -m sh -c "echo \$\$ > $CGL/cgroup.procs && mount --bind /sys/fs/cgroup /sys/fs/cgroup && mount -o remount,bind,ro /sys/fs/cgroup && exec ephemerad --rundir /run/lease --root /scratch-lease --cgroup $CGL --log /run/lease.log" &
LDAEMON=$!
i=0
while [ ! -S /run/lease/shim.sock ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
say lease_daemon_ready "$([ -S /run/lease/shim.sock ] && echo yes || echo no)"
say lease_daemon_guard "$(grep -m1 'oom guard:' /run/lease.log)"
say lease_daemon_lease "$(grep -m1 'oom guard lease' /run/lease.log)"
# Files first, as a function's are: the daemon wants the guard while they are in memory, and so
# locks its working set (daemon/reserve.c) as it does before any guard is set; the benchmark
# removes them before the heap comes, so nothing is left to evict.
sh -c "echo \$\$ > $CGL/cgroup.procs && exec env LD_PRELOAD=/lib/libephemera.so EPHEMERA_SOCK=/run/lease/shim.sock EPHEMERA_ROOTS=/scratch-lease /bin/microbench --dir /scratch-lease --file-size 4194304 --ops 500" > /dev/null 2> /run/lease-mb.err
say lease_files_status $?
DPID=$(cat $CGL/cgroup.procs)
say lease_daemon "{\"pid\":$DPID,\"locked_kb\":$(grep VmLck /proc/$DPID/status | tr -dc 0-9)}"
# What the daemon charges while the stall is held, from the kernel's side: a kprobe on the memory
# controller's charge (try_charge_memcg: every accounted allocation that its per-CPU stocks do not
# cover; a refill found above memory.high throttles the caller on its way back to user space),
# for the daemon's pid only, each hit with its kernel stack.
T=/sys/kernel/tracing
probe=none
if mount -t tracefs nodev $T 2> /dev/null; then
  for sym in try_charge_memcg try_charge; do
    grep -q " $sym\$" /proc/kallsyms && echo "p:ephchg $sym" >> $T/kprobe_events 2> /dev/null && probe=$sym && break
  done
fi
if [ $probe != none ]; then
  echo "common_pid == $DPID" > $T/events/kprobes/ephchg/filter
  echo 1 > $T/options/stacktrace
fi
high0=$(grep '^high ' $CGL/memory.events | cut -d' ' -f2)
# The bytes the shim's writers must leave (below), written by the same programs without the shim.
/bin/microbench --dir /ref-lease --file-size 65536 --ops 100 --keep > /dev/null 2>&1
touch /run/ref-go
/bin/stallfiles /ref-stall /run/ref-go 40 > /dev/null 2>&1
# A writer attached before the stall (connected, a pool batch taken) that asks during it: 40 files
# of 64 KiB, more than its batch, each created and renamed, once /run/go exists.
sh -c "echo \$\$ > /sys/fs/cgroup/writer/cgroup.procs && exec env LD_PRELOAD=/lib/libephemera.so EPHEMERA_SOCK=/run/lease/shim.sock EPHEMERA_ROOTS=/scratch-lease /bin/stallfiles /scratch-lease/s /run/go 40" > /run/s.out 2> /run/s.err &
SWRITER=$!
i=0
while ! grep -q attached /run/s.out && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sh -c "echo \$\$ > $CGL/cgroup.procs && exec dd if=/dev/zero of=/dev/null bs=64M count=1" 2> /dev/null &
VICTIM=$!
# Bounded: a workload nobody kills is ended by SIGTERM (status 143, not 137).
(sleep 60; kill -TERM $VICTIM) 2> /dev/null &
WATCH=$!
i=0
while [ "$(cat $CGL/memory.current)" -le $HIGH ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
stall=$(ms)
[ $probe != none ] && echo 1 > $T/events/kprobes/ephchg/enable
# A process under the shim asks the daemon while the stall is held: it connects, takes a pool
# batch, creates and writes files (four runs of the micro benchmark, two 64 KiB files each, kept),
# each verified in full by the writer. It runs in a cgroup of its own, unlimited: in the stalled
# one the kernel would throttle its own writes (what the daemon does is what is checked here).
sh -c "echo \$\$ > /sys/fs/cgroup/writer/cgroup.procs && for i in 1 2 3 4; do env LD_PRELOAD=/lib/libephemera.so EPHEMERA_SOCK=/run/lease/shim.sock EPHEMERA_ROOTS=/scratch-lease /bin/microbench --dir /scratch-lease/w --file-size 65536 --ops 100 --keep || exit \$?; done" > /run/w.out 2> /run/w.err &
WRITER=$!
touch /run/go
(sleep 90; kill -KILL $WRITER $SWRITER) 2> /dev/null &
WWATCH=$!
# Held: 6.5 s of the stall, sampled every 0.1 s (reads by the shell itself: no process started to
# look): the workload lives, throttled, memory.current stays above memory.high; and the daemon,
# in the same cgroup, is it throttled too, or does it charge anything?  6.5 s: longer than every
# period of the daemon's work (the 1 s tick, its 5 s walk of the roots).
above=0 samples=0 throttled=0 dthrottled=0 dsyscall=
while [ $(( $(ms) - stall )) -lt 6500 ]; do
  read -r cur < $CGL/memory.current
  [ "$cur" -gt $HIGH ] && above=$((above + 1))
  w= d=
  read -r w < /proc/$VICTIM/wchan
  [ "$w" = mem_cgroup_handle_over_high ] && throttled=$((throttled + 1))
  read -r d < /proc/$DPID/wchan
  if [ "$d" = mem_cgroup_handle_over_high ]; then
    dthrottled=$((dthrottled + 1))
    read -r dsyscall < /proc/$DPID/syscall
  fi
  samples=$((samples + 1))
  sleep 0.1
done
alive=false
grep -q '^State:.*[RSD]' /proc/$VICTIM/status 2> /dev/null && alive=true
wdone=true sdone=true
grep -q '^State:.*[RSD]' /proc/$WRITER/status 2> /dev/null && wdone=false
grep -q '^State:.*[RSD]' /proc/$SWRITER/status 2> /dev/null && sdone=false
charges=0 chstack=
if [ $probe != none ]; then
  echo 0 > $T/events/kprobes/ephchg/enable
  charges=$(grep -c ': ephchg:' $T/trace)
  chstack=$(grep -m1 -A14 ': ephchg:' $T/trace | sed -n 's/^ => //p' | tr '\n' ' ')
  # Each distinct stack (frames 2-12) with its count, for a failure's report.
  chcallers=$(awk '/: ephchg:/ { if (st != "") print st; st = ""; n = 0; next } /^ => / { n++; if (n >= 2 && n <= 12) st = st " " $2 } END { if (st != "") print st }' $T/trace | sort | uniq -c | tr -s ' \n' '  ' | head -c 3000)
fi
say lease_daemon_charges "{\"probe\":\"$probe\",\"count\":$charges,\"first_stack\":\"$chstack\",\"callers\":\"$chcallers\",\"throttled_in_syscall\":\"$dsyscall\"}"
say lease_held "{\"stall_ms\":$(( $(ms) - stall )),\"alive\":$alive,\"samples\":$samples,\"above\":$above,\"throttled\":$throttled,\"daemon_throttled\":$dthrottled,\"high_events\":$(( $(grep '^high ' $CGL/memory.events | cut -d' ' -f2) - high0 )),\"current\":$(cat $CGL/memory.current),\"orphaned_lines\":$(grep -c 'oom guard orphaned' /run/lease.log)}"
# The agent's stand-in dies: nobody holds the lease any more.
lost=$(ms)
kill -KILL $HOLDER
wait $VICTIM
status=$?
say lease_killed "{\"status\":$status,\"after_ms\":$(( $(ms) - lost )),\"pid\":$VICTIM}"
kill $WATCH 2> /dev/null
say lease_events "$(tr '\n' ' ' < $CGL/memory.events)"
i=0
while ! grep -q 'killed pid' /run/lease.log && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
say lease_log "$(grep -m1 'killed pid' /run/lease.log)"
wait $WRITER
wstatus=$?
wait $SWRITER
sstatus=$?
kill $WWATCH 2> /dev/null
kill $LDAEMON
i=0
while kill -0 $LDAEMON 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# The writer's files after the daemon's exit (written back to disk, or on disk from the start),
# byte for byte against the ones written without the shim: file 0 and file 1 of each run.
r0=$(md5sum /ref-lease/microbench-*-0.dat | cut -d' ' -f1)
r1=$(md5sum /ref-lease/microbench-*-1.dat | cut -d' ' -f1)
wfiles=0 wsame=0
for f in /scratch-lease/w/microbench-*.dat; do
  [ -f "$f" ] || continue
  wfiles=$((wfiles + 1))
  want=$r0
  case $f in *-1.dat) want=$r1 ;; esac
  [ "$(md5sum "$f" | cut -d' ' -f1)" = "$want" ] && wsame=$((wsame + 1))
done
sfiles=0 ssame=0
for f in /scratch-lease/s/f[0-9]*; do
  [ -f "$f" ] || continue
  sfiles=$((sfiles + 1))
  cmp -s "$f" "/ref-stall/${f##*/}" && ssame=$((ssame + 1))
done
say lease_attached_writer "{\"status\":$sstatus,\"done_in_stall\":$sdone,\"out\":\"$(tr '\n' ' ' < /run/s.out)\",\"files\":$sfiles,\"same\":$ssame,\"err\":\"$(head -c 300 /run/s.err | tr '\n"' '  ')\"}"
say lease_writer "{\"status\":$wstatus,\"done_in_stall\":$wdone,\"runs\":$(grep -c file_size /run/w.out),\"files\":$wfiles,\"same\":$wsame,\"err\":\"$(head -c 300 /run/w.err | tr '\n"' '  ')\"}"
# The daemon's own guard on v2 (`ephemera run --memory`: daemon and function in one cgroup, the
# daemon writes memory.high itself): files in memory under the shim, then, while the daemon is
# stopped (so that it cannot evict first), a heap that stays: a file on this guest's tmpfs root
# (not managed), written in the cgroup, that lands between that memory.high and memory.max. Above
# the memory.high it wrote the daemon's charges are throttled too, so once resumed it must see that
# stall as in follow mode (it holds its log and its deferred work, it answers no shim): the log
# tells each hold once it is over. The files are evicted to this guest's "disk", a tmpfs charged to
# the daemon, so eviction frees nothing here: small files (2 x 1 MiB, one copied at a time) and a
# heap 1.5 MiB above memory.high keep the cgroup below memory.max (4 MiB above it); the guard is
# lifted once nothing is left to evict. The files are intact; nobody is OOM-killed.
CGO=/sys/fs/cgroup/own
mkdir $CGO /run/own /scratch-own /ref-own
echo $(( 48 << 20 )) > $CGO/memory.max
/bin/microbench --dir /ref-own --file-size 1048576 --ops 100 --keep > /dev/null 2>&1
sh -c "echo \$\$ > $CGO/cgroup.procs && exec ephemerad --rundir /run/own --root /scratch-own --cgroup $CGO --log /run/own.log --debug" &
ODAEMON=$!
i=0
while [ ! -S /run/own/shim.sock ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sh -c "echo \$\$ > $CGO/cgroup.procs && exec env LD_PRELOAD=/lib/libephemera.so EPHEMERA_SOCK=/run/own/shim.sock EPHEMERA_ROOTS=/scratch-own /bin/microbench --dir /scratch-own --file-size 1048576 --ops 100 --keep" > /dev/null 2> /run/own-mb.err
ofiles=$?
i=0
while ! grep -q 'oom guard: memory.high=[0-9]' /run/own.log && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
ohigh=$(cat $CGO/memory.high)
kill -STOP $ODAEMON
ocur=$(cat $CGO/memory.current)
oheap=$(( ohigh - ocur + (3 << 19) ))
[ $oheap -gt 0 ] || oheap=$(( 1 << 20 ))
sh -c "echo \$\$ > $CGO/cgroup.procs && exec dd if=/dev/zero of=/heap-own bs=65536 count=$(( oheap >> 16 ))" 2> /dev/null &
OHEAP=$!
(sleep 60; kill -TERM $OHEAP) 2> /dev/null &
OWATCH=$!
wait $OHEAP
oheapst=$?
kill $OWATCH 2> /dev/null
oabove=$(cat $CGO/memory.current)
kill -CONT $ODAEMON
# Resumed: it evicts both files (nothing freed) and lifts the guard; the stall ends with it.
i=0
while [ "$(cat $CGO/memory.high)" != max ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
olifted=$(cat $CGO/memory.high)
rm -f /heap-own
kill $ODAEMON
i=0
while kill -0 $ODAEMON 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
osame=0
for f in /scratch-own/microbench-*.dat; do
  [ -f "$f" ] || continue
  case $f in *-1.dat) r=/ref-own/microbench-*-1.dat ;; *) r=/ref-own/microbench-*-0.dat ;; esac
  cmp -s "$f" $r && osame=$((osame + 1))
done
say own "{\"files_status\":$ofiles,\"high\":\"$ohigh\",\"current_before\":$ocur,\"heap\":$oheap,\"heap_status\":$oheapst,\"current_above\":$oabove,\"high_after\":\"$olifted\",\"same\":$osame,\"oom_kill\":$(grep '^oom_kill ' $CGO/memory.events | cut -d' ' -f2),\"evictions\":$(grep -c 'evicted inode' /run/own.log),\"err\":\"$(head -c 200 /run/own-mb.err | tr '\n"' '  ')\"}"
say own_guard "$(grep -m1 'oom guard: memory.high=[0-9]' /run/own.log)"
say own_hold "$(grep -m1 'while the cgroup was at its limit' /run/own.log)"
say done
poweroff -f
