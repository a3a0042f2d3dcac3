/*
 * include/ephemera/gate.h - the start gate between the native launcher and the shim
 * (docs/ARCHITECTURE.md, "Start-up on a shadow-paging VM: the start gate").
 *
 * The launcher execs a command that will load the shim (launcher/gate.c decides) at once, beside
 * the daemon's start, instead of after the daemon's `ready`.  The command inherits the read end
 * of the daemon's ready pipe (R) and the write end of the launcher's exec-report pipe (E), named
 * by EPHEMERA_START_GATE="R:E".  The shim's constructor (shim/init.c, sh_start_gate) removes the
 * variable, reads R until the daemon's `ready\n`, closes both and returns to the program: the
 * launcher sees E close, as it saw it close at the exec before.  Without `ready` (the daemon died
 * or never exec'd) the program never runs: the shim writes EPH_GATE_NOT_READY on E and exits 127,
 * as the launcher's own child did.
 */
#ifndef EPHEMERA_GATE_H
#define EPHEMERA_GATE_H

#define EPH_GATE_ENV "EPHEMERA_START_GATE"
/* The word on E when the daemon was never ready (beside an exec's errno, which is smaller). */
#define EPH_GATE_NOT_READY 0x20000

#endif
