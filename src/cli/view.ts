import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { EXIT_USAGE, action } from './failure.ts';

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port must be an integer in 0..65535 (0: any free port), got '${value}'`);
  return n;
}

export function registerView(program: Command): void {
  program
    .command('view')
    .description('the 3D viewer in the browser: a recording (run --record) or a live run on a broker')
    .option('--recording <file.mcap>', 'an MCAP file written by `v2xfuse run --record`')
    .option('--broker <url>', 'follow a live run on this broker (e.g. mqtt://127.0.0.1:1883)')
    .option('--session <id>', 'with --broker: only this run (default: whichever run publishes)')
    .option('--host <address>', 'interface to serve the page on', '127.0.0.1')
    .option('--port <n>', 'HTTP port (0: any free port)', parsePort, 8080)
    .action(
      action(async (o: { recording?: string; broker?: string; session?: string; host: string; port: number }) => {
        if (!!o.recording === !!o.broker) {
          process.stderr.write('v2xfuse view: give exactly one of --recording FILE.mcap or --broker URL\n(add --help for usage)\n');
          process.exitCode = EXIT_USAGE;
          return;
        }
        const { startViewerServer } = await import('../viewer/index.ts');
        const server = await startViewerServer({ ...o, log: (line) => process.stderr.write(`v2xfuse: ${line}\n`) });
        // The URL is the first stdout line so scripts (and tests) can read it when --port 0 picked the port.
        process.stdout.write(`${server.url}\n`);
        process.stderr.write('v2xfuse: open it in a browser; Ctrl-C stops the viewer\n');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
        });
        await server.close();
      }),
    );
}
