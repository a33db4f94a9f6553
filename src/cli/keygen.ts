// `v2xfuse keygen --ids 100,101,-1 --out DIR`: one ECDSA P-256 signing key per agent (DIR/<id>.key.pem, readable by
// its owner only) and the trust list every receiver loads (DIR/trust.json). An existing trust list in DIR is
// extended, so keys for a new agent can be added later without re-keying the others.
import { access, chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { type TrustedKey, TrustList, generateSigningKey, trustListJson } from '../messages/index.ts';
import { UserInputError, action } from './failure.ts';

// Ids become file names: no separators, no leading dot (OPV2V's RSU ids such as -1 are fine).
const SAFE_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

export function parseAgentIds(value: string): string[] {
  const ids = value.split(',').map((s) => s.trim());
  for (const id of ids) {
    if (!SAFE_ID.test(id)) throw new InvalidArgumentError(`agent id '${id}' must be letters, digits, '_', '-' or '.' (not first), as it names a file`);
  }
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError(`'${value}' lists an agent id twice`);
  return ids;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export interface KeygenResult {
  trustPath: string;
  keys: Array<{ agentId: string; keyId: string; keyPath: string }>;
}

/** Writes a key per id and adds (or, with force, replaces) the ids' entries in DIR/trust.json. */
export async function generateAgentKeys(ids: string[], outDir: string, force: boolean): Promise<KeygenResult> {
  await mkdir(outDir, { recursive: true });
  const trustPath = join(outDir, 'trust.json');
  const agents: Record<string, TrustedKey[]> = {};
  if (await exists(trustPath)) {
    // Validates the existing file, so a damaged one is reported instead of silently replaced.
    await TrustList.load(trustPath);
    Object.assign(agents, (JSON.parse(await readFile(trustPath, 'utf8')) as { agents: Record<string, TrustedKey[]> }).agents);
  }
  // Every conflict is found before anything is written: a refused run leaves the folder as it was.
  if (!force) {
    const taken = [];
    for (const id of ids) if ((await exists(join(outDir, `${id}.key.pem`))) || agents[id]) taken.push(id);
    if (taken.length > 0) {
      throw new UserInputError(`keygen: ${outDir} already has keys for agent${taken.length > 1 ? 's' : ''} ${taken.join(', ')}; add --force to replace them`);
    }
  }
  const keys: KeygenResult['keys'] = [];
  for (const id of ids) {
    const pair = generateSigningKey();
    const keyPath = join(outDir, `${id}.key.pem`);
    await writeFile(keyPath, pair.privateKeyPem, { mode: 0o600 });
    // writeFile's mode applies only when it creates the file; a replaced key must not keep looser permissions.
    await chmod(keyPath, 0o600);
    agents[id] = [{ keyId: pair.keyId, publicKeyPem: pair.publicKeyPem }];
    keys.push({ agentId: id, keyId: pair.keyId, keyPath });
  }
  const tmp = `${trustPath}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(trustListJson(agents), null, 2) + '\n');
  await rename(tmp, trustPath);
  return { trustPath, keys };
}

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('generate ECDSA P-256 message signing keys for agents and the trust list receivers load')
    .requiredOption('--ids <list>', 'comma-separated agent ids, e.g. 100,101,-1', parseAgentIds)
    .requiredOption('--out <dir>', 'folder for <id>.key.pem (mode 0600) and trust.json')
    .option('--force', 'replace existing keys of these agents')
    .option('--json', 'print what was written as JSON')
    .action(
      action(async (o: { ids: string[]; out: string; force?: boolean; json?: boolean }) => {
        const result = await generateAgentKeys(o.ids, o.out, o.force ?? false);
        if (o.json) {
          process.stdout.write(JSON.stringify(result, null, 2) + '\n');
          return;
        }
        for (const k of result.keys) process.stdout.write(`agent ${k.agentId}: key ${k.keyId} → ${k.keyPath}\n`);
        process.stdout.write(`trust list: ${result.trustPath}\n`);
      }),
    );
}
