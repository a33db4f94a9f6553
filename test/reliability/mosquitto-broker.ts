// A Mosquitto for the reliability tests that can be killed (SIGKILL, as a crash) and started again on the same
// port, running the repository's deploy/mosquitto config and ACL (or the TLS variant). Users are made with
// mosquitto_passwd in a temporary folder, as test/transport/mosquitto-process.ts does.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MOSQUITTO_DEPLOY_DIR, renderMosquittoConfig } from '../../src/transport/index.ts';
import { findMosquitto, freePort } from '../transport/mosquitto-process.ts';

export { MOSQUITTO_MISSING, findMosquitto } from '../transport/mosquitto-process.ts';

export interface TlsFiles {
  cafile: string;
  certfile: string;
  keyfile: string;
}

export interface ControlledMosquitto {
  url: string;
  port: number;
  dir: string;
  log(): string;
  /** SIGKILL: no goodbye to anyone, as a crash or a power cut. */
  kill(): Promise<void>;
  /** Starts it again on the same port (nothing persisted: retained messages are gone). */
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function listening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Replaces the certfile / keyfile / cafile lines of the TLS template with the given files. */
export function renderTlsLines(conf: string, tls: TlsFiles): string {
  return conf
    .split('\n')
    .map((line) => {
      const key = line.trim().split(/\s+/)[0];
      return key === 'cafile' || key === 'certfile' || key === 'keyfile' ? `${key} ${tls[key]}` : line;
    })
    .join('\n');
}

export async function startControlledMosquitto(users: Record<string, string>, opts: { tls?: TlsFiles } = {}): Promise<ControlledMosquitto> {
  const tools = findMosquitto();
  if (!tools) throw new Error('mosquitto is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-reliability-mq-'));
  const passwordFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  await copyFile(join(MOSQUITTO_DEPLOY_DIR, 'acl'), aclFile);
  let first = true;
  for (const [user, password] of Object.entries(users)) {
    const r = spawnSync(tools.mosquittoPasswd, [...(first ? ['-c'] : []), '-b', passwordFile, user, password], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mosquitto_passwd failed for ${user}: ${r.stderr}`);
    first = false;
  }
  const port = await freePort();
  const template = await readFile(join(MOSQUITTO_DEPLOY_DIR, opts.tls ? 'mosquitto-tls.conf' : 'mosquitto.conf'), 'utf8');
  let conf = renderMosquittoConfig(template, { port, passwordFile, aclFile });
  if (opts.tls) conf = renderTlsLines(conf, opts.tls);
  if (process.getuid?.() === 0) conf += '\nuser root\n';
  const confFile = join(dir, 'mosquitto.conf');
  await writeFile(confFile, conf);
  let child: ChildProcess | undefined;
  let output = '';
  let exited: Promise<void> = Promise.resolve();
  const start = async () => {
    const c = spawn(tools.mosquitto, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout!.on('data', (d) => (output += d));
    c.stderr!.on('data', (d) => (output += d));
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const deadline = Date.now() + 5000;
    while (!(await listening(port))) {
      if (c.exitCode !== null) throw new Error(`mosquitto exited with code ${c.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port}:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  await start();
  return {
    url: `${opts.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    dir,
    log: () => output,
    kill,
    start,
    async stop() {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child?.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
