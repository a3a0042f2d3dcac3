#!/bin/sh
# build/ephemera: `ephemera run` goes to the native launcher (launcher/, build/ephemera-run), which
# starts the daemon and the command without Node.js; every other command is Node's CLI.  Only
# shell built-ins on the way to the launcher, unless this script is reached through a symlink.
case $0 in */*) d=${0%/*} ;; *) d=. ;; esac
if [ -L "$0" ]; then d=$(dirname "$(readlink -f "$0")"); fi
if [ "$1" = run ] && [ -x "$d/ephemera-run" ]; then shift; exec "$d/ephemera-run" "$@"; fi
exec node "$d/js/cli/main.js" "$@"
