/**
 * The dashboard page's markup and style. The script is page/app.ts (compiled for the browser);
 * the charts are Chart.js, served from node_modules.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ephemera</title>
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
<script src="/dashboard/assets/chart.umd.min.js"></script>
<script type="module" src="/dashboard/assets/app.js"></script>
</head>
<body>
<header>
  <h1>Ephemera</h1>
  <span id="viewer"></span>
  <span id="conn" class="conn">connecting</span>
  <span id="updated"></span>
  <button id="logout" type="button" hidden>Sign out</button>
</header>
<form id="login" hidden>
  <p>Sign in with your key: the <code>AUTH=</code> value of your wsk props file (<code>uuid:key</code>).
  A tenant's key shows that tenant's containers; the operator key shows every tenant.</p>
  <label>Key <input id="key" name="key" type="password" autocomplete="current-password" required size="60"></label>
  <button type="submit">Sign in</button>
  <p id="login-error" role="alert"></p>
</form>
<main id="main" hidden>
  <p id="problem" role="alert" hidden></p>
  <section><h2>Nodes, tenants and containers</h2>
    <p class="legend"><span class="sw quota"></span>initial quota <span class="sw granted"></span>granted limit
      <span class="sw used"></span>memory used <span class="sw files"></span>files in memory ·
      pools: <b class="pool harvest">H</b> harvest <b class="pool allocation">A</b> allocation
      <b class="pool self-sufficient">S</b> self-sufficient</p>
    <div id="nodes"></div>
  </section>
  <section><h2>Loans now</h2><ul id="loans" class="loans"></ul></section>
  <section class="charts">
    <div><h2>Latency per action</h2><div class="chartbox"><canvas id="latency"></canvas></div></div>
    <div><h2>File operations served from memory</h2><div class="chartbox"><canvas id="fastshare"></canvas></div></div>
  </section>
  <section><h2>Moves since this page opened</h2><ul id="moves" class="moves"><li id="no-moves">none yet</li></ul></section>
  <section><h2>Recent activations</h2>
    <table id="activations"><thead><tr><th>start</th><th>action</th><th>activation</th><th>status</th><th>duration</th><th>ephemera</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;

export const DASHBOARD_CSS = `
:root { --quota: #9aa5b1; --granted: #3b82f6; --used: #f59e0b; --files: #10b981; font-family: system-ui, sans-serif; }
body { margin: 0; color: #1f2933; background: #f7f9fb; }
header { display: flex; gap: 1em; align-items: baseline; padding: .5em 1em; background: #1f2933; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; }
.conn { font-size: .85em; padding: .1em .5em; border-radius: 1em; background: #52606d; }
.conn.live { background: #15803d; }
.conn.down { background: #b91c1c; }
main, form { padding: 0 1em 2em; }
h2 { font-size: 1em; margin: 1.2em 0 .4em; }
h3, h4 { margin: .6em 0 .3em; font-size: .95em; }
.node { background: #fff; border: 1px solid #d9e2ec; border-radius: 6px; padding: .5em 1em; margin-bottom: 1em; }
.totals { color: #52606d; font-size: .85em; }
.tenant { margin: .5em 0 1em; }
.chartbox { position: relative; width: 100%; }
.containers { border-collapse: collapse; font-size: .8em; width: 100%; margin-top: .3em; }
.containers td, .containers th, #activations td, #activations th { padding: .15em .5em; text-align: left; border-bottom: 1px solid #e4e7eb; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pool { display: inline-block; min-width: 1.2em; text-align: center; border-radius: 3px; color: #fff; font-size: .8em; }
.pool.harvest { background: #7c3aed; } .pool.allocation { background: #0891b2; } .pool.self-sufficient { background: #64748b; }
.legend { font-size: .8em; color: #52606d; }
.sw { display: inline-block; width: .9em; height: .9em; vertical-align: middle; margin-left: .6em; }
.sw.quota { background: var(--quota); } .sw.granted { background: var(--granted); } .sw.used { background: var(--used); } .sw.files { background: var(--files); }
.loans li, .moves li { font-family: ui-monospace, monospace; font-size: .85em; }
.arrow { color: #3b82f6; }
.charts { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1em; }
.charts .chartbox { height: 260px; background: #fff; border: 1px solid #d9e2ec; border-radius: 6px; }
#activations { border-collapse: collapse; font-size: .8em; width: 100%; background: #fff; }
.status-success { color: #15803d; } .status-error { color: #b91c1c; }
.annotation { font-family: ui-monospace, monospace; color: #52606d; }
#problem { background: #fee2e2; color: #991b1b; padding: .4em .8em; border-radius: 4px; }
`;
