// The benchmark tool's quick MQTT section end to end (results.json and results.md), and its report on a made-up
// result: the shape other tools and the README read, never timings.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { slopePer1000 } from '../../tools/bench/memory.ts';
import { MQTT_PAYLOAD_SIZES } from '../../tools/bench/mqtt.ts';
import { renderMarkdown } from '../../tools/bench/report.ts';

test('bench --quick --only mqtt writes results.json with every payload size per broker, and results.md', async () => {
  const out = await mkdtemp(join(tmpdir(), 'v2xfuse-bench-'));
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/bench/main.ts', '--quick', '--only', 'mqtt', '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    assert.equal(results.quick, true);
    assert.equal(typeof results.machine.cores, 'number');
    assert.deepEqual(Object.keys(results.sections), ['mqtt']);
    const embedded = results.sections.mqtt.embedded;
    assert.deepEqual(Object.keys(embedded).map(Number), [...MQTT_PAYLOAD_SIZES]);
    for (const v of Object.values(embedded) as { messages: number; received: number; messagesPerSecond: number }[]) {
      assert.equal(v.received, v.messages, 'every QoS 0 message published in the window arrives');
      assert.ok(v.messagesPerSecond > 0);
    }
    // Mosquitto: measured when installed, else a skip with its reason, never absent.
    assert.ok(results.sections.mqtt.mosquitto.skipped || Object.keys(results.sections.mqtt.mosquitto).length === MQTT_PAYLOAD_SIZES.length);
    const md = await readFile(join(out, 'results.md'), 'utf8');
    assert.match(md, /## MQTT/);
    assert.match(md, /\| embedded \| 66 kB \|/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('bench refuses an unknown section with exit code 2', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/bench/main.ts', '--only', 'stages,nosuch'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /nosuch: no such section/);
});

test('the report marks a target met or not met by its limit', () => {
  const md = renderMarkdown({
    command: 'npm run bench', date: 'd', quick: false, machine: { cpu: 'x', cores: 2 },
    sections: { stages: { totals: { agentEncode30k: { p50: 59 }, fusion4PlusHead: { p50: 120 } } } },
  });
  assert.match(md, /pillarised and encoded \| ≤ 60 ms \(median\) \| 59\.0 ms \| met \|/);
  assert.match(md, /plus head, decode, NMS \| ≤ 80 ms \(median\) \| 120\.0 ms \| \*\*not met\*\* \(1\.5×\) \|/);
  assert.match(md, /end to end at 10 Hz.*not measured/);
});

test('memory growth is the RSS slope per 1000 frames', () => {
  assert.equal(slopePer1000([100, 100, 100, 100]), 0);
  assert.ok(Math.abs(slopePer1000(Array.from({ length: 50 }, (_, i) => 200 + 0.002 * i)) - 2) < 1e-9);
});

test('bench --help exits 0 and names every section', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'tools/bench/main.ts', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const s of ['stages', 'graphs', 'workers', 'codecs', 'memory']) assert.match(r.stdout, new RegExp(`\\b${s}\\b`));
});

test('the report shows the camera stages, the traced-vs-lean graphs and the worker comparison', () => {
  const md = renderMarkdown({
    command: 'npm run bench', date: 'd', quick: false, machine: { cpu: 'x', cores: 2 },
    sections: {
      stages: { camerasPerAgent: '1–4', camera: { cameraLift: { p50: 240, p99: 300 } }, totals: {} },
      graphs: {
        ms: { 'lidar_pfn traced': { p50: 60 }, 'lidar_pfn lean': { p50: 20 }, 'fusion_attention traced': { p50: 100 }, 'fusion_attention lean': { p50: 15 } },
        speedup: { lidar_pfn: 3, fusion_attention: 6.67 },
        maxAbsDiff: { lidar_pfn: 1.4e-6, fusion_attention: 5e-6 },
      },
      workers: { agentsPerFrame: 4, cores: 2, encodeAllAgents: { sequential1Thread: { p50: 388, p99: 600 }, workers2x1Thread: { p50: 430, p99: 800 } } },
    },
  });
  assert.match(md, /\| camera \(1–4 cameras\) \| cameraLift \| 240\.00 \/ 300\.00 \|/);
  assert.match(md, /\| lidar_pfn \| 60\.00 \| 20\.00 \| 3\.00× \| 1\.4e-6 \|/);
  assert.match(md, /\| fusion_attention \| 100\.00 \| 15\.00 \| 6\.67× \| 5\.0e-6 \|/);
  assert.match(md, /\| workers2x1Thread \| 430\.0 \/ 800\.0 \|/);
});
