// Starts a real Mosquitto for integration tests: the repository's deploy/mosquitto config and ACL, rendered for a
// free port and a temporary folder, with users made by mosquitto_passwd. Mosquitto is a system package
// (apt-get install mosquitto); CI installs it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MOSQUITTO_DEPLOY_DIR, renderDeployedMosquittoConfig } from '../../src/transport/index.ts';

export const MOSQUITTO_MISSING =
  'mosquitto is not installed: apt-get install mosquitto (the MQTT integration tests run a real Mosquitto; CI installs it)';

function findExecutable(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin']) {
    if (dir === '') continue;
    const path = join(dir, name);
    if (spawnSync('test', ['-x', path]).status === 0) return path;
  }
  return undefined;
}

export function findMosquitto(): { mosquitto: string; mosquittoPasswd: string } | undefined {
  const mosquitto = findExecutable('mosquitto');
  const mosquittoPasswd = findExecutable('mosquitto_passwd');
  return mosquitto && mosquittoPasswd ? { mosquitto, mosquittoPasswd } : undefined;
}

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitForListener(port: number, child: ChildProcess, log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with code ${child.exitCode}:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${port} within ${timeoutMs} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningMosquitto {
  url: string;
  port: number;
  dir: string;
  /** What Mosquitto wrote to stderr so far (its log). */
  log(): string;
  stop(): Promise<void>;
}

/** users: user name → password. */
export async function startMosquitto(users: Record<string, string>): Promise<RunningMosquitto> {
  const tools = findMosquitto();
  if (!tools) throw new Error(MOSQUITTO_MISSING);
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-mosquitto-'));
  const passwordFile = join(dir, 'passwd');
  const aclFile = join(dir, 'acl');
  await copyFile(join(MOSQUITTO_DEPLOY_DIR, 'acl'), aclFile);
  let first = true;
  for (const [user, password] of Object.entries(users)) {
    const args = first ? ['-c', '-b', passwordFile, user, password] : ['-b', passwordFile, user, password];
    first = false;
    const r = spawnSync(tools.mosquittoPasswd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mosquitto_passwd failed for ${user}: ${r.stderr}`);
  }
  const port = await freePort();
  let conf = await renderDeployedMosquittoConfig({ port, passwordFile, aclFile });
  // Started as root, Mosquitto drops to the 'mosquitto' user, which cannot read a private temp folder; a test
  // broker keeps the user that started it.
  if (process.getuid?.() === 0) conf += '\nuser root\n';
  const confFile = join(dir, 'mosquitto.conf');
  await writeFile(confFile, conf);
  const child = spawn(tools.mosquitto, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForListener(port, child, () => output, 5000);
  } catch (err) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir,
    log: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
