// Prints deploy/mosquitto/mosquitto.conf with its listener, password_file and acl_file lines set for a deployment
// (the same rendering the Mosquitto integration tests use). See deploy/mosquitto/README.md.
//   npx tsx tools/mosquitto-config.ts --port 1884 [--host 10.0.0.5] --password-file /srv/mq/passwd --acl-file /srv/mq/acl > mosquitto.conf
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderDeployedMosquittoConfig } from '../src/transport/index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '1883' },
    host: { type: 'string', default: '127.0.0.1' },
    'password-file': { type: 'string' },
    'acl-file': { type: 'string' },
  },
});
const passwordFile = values['password-file'];
const aclFile = values['acl-file'];
if (!passwordFile || !aclFile) {
  process.stderr.write('usage: npx tsx tools/mosquitto-config.ts [--port P] [--host H] --password-file FILE --acl-file FILE\n');
  process.exit(2);
}
try {
  process.stdout.write(
    await renderDeployedMosquittoConfig({ port: Number(values.port), host: values.host, passwordFile: resolve(passwordFile), aclFile: resolve(aclFile) }),
  );
} catch (err) {
  process.stderr.write(`mosquitto-config: ${(err as Error).message}\n`);
  process.exit((err as { userFacing?: boolean }).userFacing ? 3 : 1);
}
