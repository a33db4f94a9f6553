// The page, bundled with esbuild at server start into memory: no build step to remember, no CDN, nothing fetched
// from the network (three, protobufjs and the generated messages come from node_modules and src/).
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const WEB = join(dirname(fileURLToPath(import.meta.url)), 'web');

export interface ViewerPage {
  html: string;
  script: string;
}

export class ViewerBundleError extends Error {
  constructor(detail: string) {
    super(`could not bundle the viewer page (${WEB}): ${detail}`);
    this.name = 'ViewerBundleError';
  }
}

let cached: Promise<ViewerPage> | undefined;

/** The page's HTML (with its CSS inlined) and its script, bundled once per process. */
export function bundleViewerPage(): Promise<ViewerPage> {
  cached ??= (async () => {
    const [template, css] = await Promise.all([readFile(join(WEB, 'index.html'), 'utf8'), readFile(join(WEB, 'style.css'), 'utf8')]);
    let out;
    try {
      out = await build({
        entryPoints: [join(WEB, 'main.ts')],
        bundle: true,
        format: 'esm',
        platform: 'browser',
        target: 'es2022',
        minify: true,
        write: false,
        logLevel: 'silent',
        legalComments: 'none',
      });
    } catch (err) {
      cached = undefined;
      throw new ViewerBundleError((err as Error).message);
    }
    return { html: template.replace('/*STYLE*/', () => css), script: out.outputFiles[0].text };
  })();
  return cached;
}
