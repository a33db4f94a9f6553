// The repository's Mosquitto configuration (deploy/mosquitto/mosquitto.conf) is a working file for the default
// layout (port 1883 on loopback, users and ACL under /etc/mosquitto/v2xfuse). This rewrites the lines that differ
// between setups (the listener, the password and ACL files), so tests and deployments run the same settings
// rather than a copy that drifts. Pure text in, text out.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** deploy/mosquitto in this repository. */
export const MOSQUITTO_DEPLOY_DIR = fileURLToPath(new URL('../../deploy/mosquitto/', import.meta.url));

export interface MosquittoConfigSettings {
  port: number;
  /** Address the listener binds (default 127.0.0.1). */
  host?: string;
  /** Absolute path of the file `mosquitto_passwd` writes. */
  passwordFile: string;
  /** Absolute path of the ACL (e.g. a copy of deploy/mosquitto/acl). */
  aclFile: string;
}

export class MosquittoConfigError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'MosquittoConfigError';
  }
}

const REPLACED_DIRECTIVES = ['listener', 'password_file', 'acl_file'] as const;

function assertPathValue(name: string, value: string): void {
  // Mosquitto reads a value to the end of the line; a newline would inject directives.
  if (value === '' || /[\r\n]/.test(value)) throw new MosquittoConfigError(`${name} must be a non-empty single-line path, got ${JSON.stringify(value)}`);
}

/**
 * Returns `template` with its single `listener`, `password_file` and `acl_file` lines replaced; every other line
 * (comments included) is kept. Throws MosquittoConfigError when the template lacks one of them or has it twice,
 * so a changed template cannot silently leave a test or a deployment on the wrong port or without its ACL.
 */
export function renderMosquittoConfig(template: string, settings: MosquittoConfigSettings): string {
  const { port, host = '127.0.0.1', passwordFile, aclFile } = settings;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new MosquittoConfigError(`port must be an integer in 1..65535, got ${port}`);
  if (!/^[A-Za-z0-9.:_-]+$/.test(host)) throw new MosquittoConfigError(`host must be an address or host name, got ${JSON.stringify(host)}`);
  assertPathValue('passwordFile', passwordFile);
  assertPathValue('aclFile', aclFile);
  const replacement: Record<(typeof REPLACED_DIRECTIVES)[number], string> = {
    listener: `listener ${port} ${host}`,
    password_file: `password_file ${passwordFile}`,
    acl_file: `acl_file ${aclFile}`,
  };
  const seen = new Map<string, number>();
  const lines = template.split('\n').map((line) => {
    const directive = line.trim().split(/\s+/)[0] as (typeof REPLACED_DIRECTIVES)[number];
    if (!(REPLACED_DIRECTIVES as readonly string[]).includes(directive)) return line;
    seen.set(directive, (seen.get(directive) ?? 0) + 1);
    return replacement[directive];
  });
  for (const d of REPLACED_DIRECTIVES) {
    const n = seen.get(d) ?? 0;
    if (n !== 1) throw new MosquittoConfigError(`the Mosquitto config template must have exactly one '${d}' line, found ${n}`);
  }
  return lines.join('\n');
}

/** Reads deploy/mosquitto/mosquitto.conf and renders it (see renderMosquittoConfig). */
export async function renderDeployedMosquittoConfig(settings: MosquittoConfigSettings): Promise<string> {
  const template = await readFile(join(MOSQUITTO_DEPLOY_DIR, 'mosquitto.conf'), 'utf8');
  return renderMosquittoConfig(template, settings);
}
