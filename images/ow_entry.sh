#!/bin/sh
# The entry point of a function container run with Ephemera (the node agent starts it):
#
#   sh /opt/ephemera/runtime/ow_entry.sh RUNDIR ROOT [ow_runtime.py options...]
#
# It starts the instance's ephemerad in the background and, without waiting for it, replaces
# itself by the one Python interpreter that serves the action, with libephemera.so preloaded. The
# daemon and the interpreter boot side by side; the runtime waits for the daemon's "ready" line
# (in a file in RUNDIR) before it touches ROOT or answers /health, so the shim's first use of the
# daemon always finds it up. exec keeps the process id: the daemon stays a child of the runtime,
# which reaps it and ends it on SIGTERM. A shell costs about a millisecond; a second Python start,
# as the runtime used to do (start the daemon, then re-execute itself under the shim), costs tens.
set -eu
if [ $# -lt 2 ]; then
  echo "ow_entry.sh: usage: ow_entry.sh RUNDIR ROOT [ow_runtime.py options...]" >&2
  exit 2
fi
rundir=$1
root=$2
shift 2
opt=${EPHEMERA_OPT:-/opt/ephemera}  # another tree only for tests on the host
lib=$opt/lib/libephemera.so
ready=$rundir/daemon.ready
# The daemon writes its ready line to a file the shell opens for it: no helper process (mkfifo and
# rm cost more than the rest of this script together), and the runtime reads it when it has booted.
"$opt/bin/ephemerad" --rundir "$rundir" --root "$root" --cgroup auto --ready-fd 3 \
  --log "$rundir/daemon.log" 3>"$ready" </dev/null &
LD_PRELOAD=$lib EPHEMERA_LIB=$lib EPHEMERA_SOCK=$rundir/shim.sock EPHEMERA_ROOTS=$root \
  EPHEMERA_LOG=$rundir/shim.log PYTHONUNBUFFERED=1 \
  exec python3 "$opt/runtime/ow_runtime.py" --rundir "$rundir" --daemon-pid "$!" \
  --ready-file "$ready" "$@"
