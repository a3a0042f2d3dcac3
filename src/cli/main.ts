/**
 * The `ephemera` command: the one place where the components are wired together.
 *
 * Each command's module is loaded only when that command runs: the benchmark harnesses pull in
 * plotting libraries, and `ephemera run` should start a function without paying for them.
 */
import { isEphemeraError } from '../core/errors.js';

interface LoadedCommand {
  readonly usage: string;
  readonly main: (argv: readonly string[]) => Promise<number>;
}

interface Command {
  readonly summary: string;
  readonly load: () => Promise<LoadedCommand>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  run: {
    summary: 'run a command with its scratch directories in memory',
    load: async () => {
      const m = await import('./run.js');
      return { usage: m.RUN_USAGE, main: m.runMain };
    },
  },
  ctl: {
    summary: 'send a control request (stats, shrink, grow, subscribe, shutdown) to a running daemon',
    load: async () => {
      const m = await import('./ctl.js');
      return { usage: m.CTL_USAGE, main: (argv) => m.ctlMain(argv) };
    },
  },
  node: {
    summary: 'run the node agent: function containers, memory limits and the Tenant Managers (API on a unix socket)',
    load: async () => {
      const m = await import('./node.js');
      return { usage: m.NODE_USAGE, main: m.nodeMain };
    },
  },
  bench: {
    summary: 'run a benchmark and print a table of results',
    load: async () => {
      const m = await import('./bench.js');
      return { usage: m.BENCH_USAGE, main: m.benchMain };
    },
  },
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length), 4);
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: ephemera COMMAND [ARGS...]

Ephemera keeps the scratch files of unmodified programs in memory that their container was given
but does not use, and moves them to disk the moment that memory is needed.

commands:
${lines.join('\n')}
  ${'help'.padEnd(width)}  show this text, or \`ephemera help COMMAND\` for one command

Error codes are listed in docs/ERRORS.md.`;
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined;
    const cmd = topic === undefined ? undefined : COMMANDS[topic];
    if (topic !== undefined && cmd === undefined) {
      process.stderr.write(`ephemera: EPH_CLI_USAGE: no help for unknown command ${JSON.stringify(topic)}\n\n${overview()}\n`);
      return 2;
    }
    process.stdout.write(`${cmd === undefined ? overview() : (await cmd.load()).usage}\n`);
    return name === undefined ? 2 : 0;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (cmd === undefined) {
    process.stderr.write(`ephemera: EPH_CLI_USAGE: unknown command ${JSON.stringify(name)}\n\n${overview()}\n`);
    return 2;
  }
  const loaded = await cmd.load();
  if (rest[0] === '--help' || rest[0] === '-h') {
    process.stdout.write(`${loaded.usage}\n`);
    return 0;
  }
  return loaded.main(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (isEphemeraError(err)) {
    process.stderr.write(`ephemera: ${err.code}: ${err.message}\n`);
    process.exitCode = err.exitStatus;
  } else {
    process.stderr.write(`ephemera: internal error (please report): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
