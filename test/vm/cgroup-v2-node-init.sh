#!/bin/busybox sh
# /init of the cgroup v2 guest that runs the node agent's TypeScript (src/node/cgroup-v2-node-vm.test.ts):
# a kernel booted with cgroup_no_v1=all, so memory is on the unified hierarchy, as on a v2 host.
# Node.js runs the compiled src/node/cgroup-v2-guest.ts, which prints the "V2N key value" lines
# the host checks; then the guest powers off. Everything is in the initramfs (test/vm/mkinitramfs.sh node).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t cgroup2 none /sys/fs/cgroup
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
start=$(cut -d' ' -f1 /proc/uptime)
# Bounded below the host test's 170 s, so the console says why when it runs out.
timeout 150 /bin/node /ephemera/js/node/cgroup-v2-guest.js
echo "V2N node_status \"$?\""
echo "V2N guest_seconds \"$start $(cut -d' ' -f1 /proc/uptime)\""
poweroff -f
