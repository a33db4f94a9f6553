// Shared by the browser tests: Debian's chromium driven by playwright-core (which never downloads a browser), and
// pixel counts on the page's WebGL canvas.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';

export const CHROMIUM = process.env.V2XFUSE_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined. With CI set a missing chromium fails instead (.ci/run installs it). */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.env.CI) throw new Error(`${CHROMIUM} not found: .ci/run installs Debian's chromium for the viewer tests`);
  return `${CHROMIUM} not found (apt-get install chromium)`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // WebGL on the CPU: no GPU on CI machines. --no-sandbox because CI runs as root.
    args: ['--enable-unsafe-swiftshader', '--use-angle=swiftshader', '--no-sandbox', '--disable-dev-shm-usage'],
  });
}

export async function openViewer(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => window.__v2xfuseViewer?.ready === true, null, { timeout: 60_000 });
  return { page, errors };
}

export interface Pixels {
  width: number;
  height: number;
  data: Uint8Array;
}

/** The WebGL canvas alone (no HTML overlays), as RGB. */
export async function canvasPixels(page: Page): Promise<Pixels> {
  const url = await page.evaluate(() => (document.getElementById('view') as HTMLCanvasElement).toDataURL('image/png'));
  const png = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Pixels within `tolerance` (sum of channel differences) of the colour `hex`. */
export function countColour(p: Pixels, hex: number, tolerance = 60): number {
  const r = (hex >> 16) & 255, g = (hex >> 8) & 255, b = hex & 255;
  let n = 0;
  for (let i = 0; i < p.data.length; i += 3) {
    if (Math.abs(p.data[i] - r) + Math.abs(p.data[i + 1] - g) + Math.abs(p.data[i + 2] - b) <= tolerance) n++;
  }
  return n;
}

/** Pixels that differ from the background colour `hex`. */
export function countNonBackground(p: Pixels, hex: number, tolerance = 30): number {
  return p.width * p.height - countColour(p, hex, tolerance);
}

/** Pixels that differ between two images of the same size. */
export function countDifferent(a: Pixels, b: Pixels, tolerance = 30): number {
  let n = 0;
  for (let i = 0; i < a.data.length; i += 3) {
    if (Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]) > tolerance) n++;
  }
  return n;
}
