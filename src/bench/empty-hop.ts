/**
 * An HTTP forwarding hop that does no work at all, for `ephemera bench platform`'s floor: it
 * stands where the controller or the node agent stands, on the same transports (a TCP listener
 * like the controller's API, a unix socket like the node agent's), and forwards each request
 * unread (method, path, headers, body piped) to the next hop or a container's runtime socket
 * through a node:http keep-alive agent, the response piped back the same way. What a call costs
 * through one or two of these, less the direct `/run`, is what the platform's architecture (a
 * controller process, a node agent process, the container) costs before it does anything.
 *
 * Usage: node empty-hop.js LISTEN TARGET_SOCKET...
 *   LISTEN is `tcp` (127.0.0.1, any free port) or a unix socket path. A request goes to
 *   TARGET_SOCKET number `x-hop-container` (mod the count; 0 without the header), so that one
 *   hop serves several warm containers the way the node agent does.
 * Prints one JSON line, `{"url": ...}` or `{"socket": ...}`, once it listens; SIGTERM stops it.
 */
import { Agent, createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

const [listen, ...targets] = process.argv.slice(2);
if (listen === undefined || targets.length === 0) {
  process.stderr.write('usage: empty-hop.js tcp|SOCKET TARGET_SOCKET...\n');
  process.exit(2);
}
const agent = new Agent({ keepAlive: true });

const server = createServer((req, res) => {
  const index = Number(req.headers['x-hop-container'] ?? 0);
  const socketPath = targets[(Number.isInteger(index) && index >= 0 ? index : 0) % targets.length] ?? '';
  const headers: IncomingHttpHeaders = { ...req.headers };
  delete headers.host;
  delete headers.connection;
  const out = request({ socketPath, path: req.url, method: req.method, headers, agent }, (up) => {
    const back: IncomingHttpHeaders = { ...up.headers };
    delete back.connection;
    delete back['keep-alive'];
    res.writeHead(up.statusCode ?? 502, back);
    up.pipe(res);
  });
  out.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `the empty hop could not reach ${socketPath}: ${e.message}` }));
  });
  req.pipe(out);
});
server.keepAliveTimeout = 60_000;

if (listen === 'tcp') {
  server.listen(0, '127.0.0.1', () => {
    const a = server.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${String(a.port)}` })}\n`);
  });
} else {
  server.listen(listen, () => { process.stdout.write(`${JSON.stringify({ socket: listen })}\n`); });
}
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
