/**
 * A controller process for the restart tests: the real controller (store, API, invoker) with the
 * FakeNode at the node seam, so a test can SIGKILL it and start it again on the same state.
 *
 *   node build/js/platform/fake-controller.js STATE_DIR HOME_DIR [instant]
 *
 * With `instant`, containers answer at once (InstantNode): `ephemera bench platform` times the
 * controller's own cost with it.
 * Prints one JSON line `{"url": ...}` on stdout once it listens.
 */
import { pino } from 'pino';

import { startController } from './controller.js';
import { FakeNode, InstantNode } from './fake-node.js';
import { MostFreeSelector } from './selector.js';

const [stateDir, home, mode] = process.argv.slice(2);
if (stateDir === undefined || home === undefined) {
  process.stderr.write('usage: fake-controller.js STATE_DIR HOME_DIR [instant]\n');
  process.exit(2);
}
const ctl = await startController({
  stateDir,
  home,
  host: '127.0.0.1',
  port: 0,
  tenants: ['guest', 'bench'],
  nodes: [mode === 'instant' ? new InstantNode() : new FakeNode(stateDir)],
  selector: new MostFreeSelector(),
  log: pino({ level: 'warn' }, pino.destination(2)),
  keepAliveMs: 60_000,
  blockingWaitMs: 30_000,
});
process.stdout.write(`${JSON.stringify({ url: ctl.url })}\n`);
process.on('SIGTERM', () => { void ctl.close().then(() => process.exit(0)); });
