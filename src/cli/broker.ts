import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action } from './failure.ts';

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port must be an integer in 0..65535 (0: any free port), got '${value}'`);
  return n;
}

export function registerBroker(program: Command): void {
  program
    .command('broker')
    .description('run the embedded MQTT broker (aedes, MQTT 3.1.1, no authentication) until Ctrl-C; for deployments see deploy/mosquitto')
    .option('--host <address>', 'interface to listen on (0.0.0.0: every interface, reachable from other machines without any authentication)', '127.0.0.1')
    .option('--port <n>', 'TCP port (0: any free port)', parsePort, 1883)
    .action(
      action(async (o: { host: string; port: number }) => {
        const { startEmbeddedBroker } = await import('../transport/index.ts');
        const broker = await startEmbeddedBroker({ host: o.host, port: o.port });
        // The URL is the first stdout line so scripts (and tests) can read it when --port 0 picked the port.
        process.stdout.write(`${broker.url}\n`);
        process.stderr.write(`v2xfuse: MQTT broker listening on ${broker.url} (Ctrl-C to stop)\n`);
        const signal = await new Promise<NodeJS.Signals>((resolve) => {
          process.once('SIGINT', () => resolve('SIGINT'));
          process.once('SIGTERM', () => resolve('SIGTERM'));
        });
        await broker.close();
        process.stderr.write(`v2xfuse: MQTT broker stopped (${signal})\n`);
      }),
    );
}
