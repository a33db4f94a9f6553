// The sweep command end to end on two frames of the fixture with the shipped models (the tiny test models' grid
// holds no ground truth, so AP and tracking would be empty): the files it writes, the figures' marks, and resuming
// without running a finished configuration again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CHANNEL_27MBPS_BYTES_PER_MESSAGE, type SweepResult } from '../../src/sweep/index.ts';
import { projectRoot, runCli } from './helpers.ts';

const fixture = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const tiny = resolve(projectRoot, 'test/fixtures/onnx/manifest.json');
const shipped = resolve(projectRoot, 'models/manifest.json');

test('sweep: a 2×2 grid writes results, table, report and figures, and a second run resumes', async () => {
  const out = await mkdtemp(join(tmpdir(), 'v2xfuse-sweep-'));
  try {
    const args = ['sweep', fixture, '--models', shipped, '--frames', '2', '--threads', '1', '--fusion', 'max,mean', '--codecs', 'int8+deflate,int8+top10%+deflate', '--out', out];
    const first = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /4 configurations run, 0 found finished/);
    // The encoder ran once per agent-frame (2 frames × 3 agents), every other encode reused its map.
    assert.match(first.stdout, /encoder: 6 encodes, 18 reused/);

    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as SweepResult[];
    assert.equal(results.length, 4);
    assert.deepEqual(results.map((r) => `${r.fusion} ${r.codec}`), ['max int8+deflate', 'max int8+top10%+deflate', 'mean int8+deflate', 'mean int8+top10%+deflate']);
    for (const r of results) {
      // The field names of `v2xfuse run --report`.
      for (const k of ['ap', 'byClass', 'bytesPerMessage', 'mbpsPerAgent', 'latencyMs', 'dropped', 'frames', 'modelId']) assert.ok(k in r, k);
      assert.deepEqual(Object.keys(r.ap), ['0.3', '0.5', '0.7']);
      assert.equal(r.frames, 2);
      assert.ok(Object.values(r.ap).every(Number.isFinite), 'AP over frames with ground truth');
      assert.ok(r.tracking && Number.isFinite(r.tracking.mota) && r.tracking.gt > 0, 'tracking metrics');
      const wire = r.bytesPerMessage.all, pb = r.protobufBytesPerMessage.all;
      // Two collaborators × 2 frames; MQTT framing adds the same few dozen bytes to every message.
      assert.equal(wire.count, 4);
      const framing = wire.mean - pb.mean;
      assert.ok(framing > 40 && framing < 60, `framing ${framing}`);
      assert.ok(Math.abs(r.publishedUnits!.megabitsPerMessage - (wire.mean * 8) / 1e6) < 1e-12);
      assert.ok(r.latencyMs.pfn.count === 2 && r.latencyMs.warp.count === 2);
    }
    // Selecting the top 10 % of cells sends fewer bytes than sending them all.
    assert.ok(results[1].bytesPerMessage.all.mean < results[0].bytesPerMessage.all.mean / 3);

    const csv = (await readFile(join(out, 'results.csv'), 'utf8')).trim().split('\n');
    assert.equal(csv.length, 5);
    const header = csv[0].split(',');
    for (const col of ['fusion', 'codec', 'bytes_per_message_mean', 'bytes_per_message_p95', 'mb_per_message', 'log2_bytes', 'mbps_per_agent_10hz', 'ap_0.3', 'ap_0.5', 'ap_0.7', 'mota', 'latency_pfn_ms_mean', 'pareto_front']) {
      assert.ok(header.includes(col), col);
    }
    assert.ok(csv.slice(1).some((row) => row.split(',')[header.indexOf('pareto_front')] === 'yes'));

    const svg = await readFile(join(out, 'plots/ap-vs-bytes.svg'), 'utf8');
    assert.match(svg, /class="mark-symbol role-mark pareto_marks"/);
    assert.match(svg, /class="mark-rule role-mark channel_marks"/);
    assert.match(svg, /27 Mbps \(2\.7 Mb\/msg\)/);
    // The reference rule sits at 337 500 bytes: the spec beside the figure says so.
    const spec = JSON.parse(await readFile(join(out, 'plots/ap-vs-bytes.vl.json'), 'utf8'));
    assert.equal(spec.layer.find((l: { name: string }) => l.name === 'channel').data.values[0].bytes, CHANNEL_27MBPS_BYTES_PER_MESSAGE);
    const png = await readFile(join(out, 'plots/ap-vs-bytes.png'));
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    await stat(join(out, 'plots/latency-per-stage.svg'));
    const html = await readFile(join(out, 'report.html'), 'utf8');
    assert.match(html, /<svg/);
    assert.doesNotMatch(html, /(src|href)="https?:/, 'no external resources');
    assert.match(await readFile(join(out, 'report.md'), 'utf8'), /!\[.*\]\(plots\/ap-vs-bytes\.svg\)/);

    // Again, with one more loss level: the four finished configurations are not run, only the new ones.
    const second = await runCli([...args, '--loss', '0,0.5']);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /4 configurations run, 4 found finished/);
    assert.equal((second.stderr.match(/skipped \(finished\)/g) ?? []).length, 4);
    const after = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as SweepResult[];
    assert.equal(after.length, 8);
    // The finished entries are kept as they were (their wall time would differ had they run again).
    assert.deepEqual(after.slice(0, 4), results);
    assert.ok(after.slice(4).every((r) => r.impairments.loss === 0.5));
    await stat(join(out, 'plots/ap-vs-loss.svg'));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('sweep: nothing to run and a broken results.json are one-line errors', async () => {
  const none = await runCli(['sweep', fixture, '--models', tiny, '--out', '/tmp/never-written']);
  assert.equal(none.code, 3);
  assert.match(none.stderr, /nothing to run/);
  const out = await mkdtemp(join(tmpdir(), 'v2xfuse-sweep-'));
  try {
    await import('node:fs/promises').then((fs) => fs.writeFile(join(out, 'results.json'), '{"not": "an array"}'));
    const bad = await runCli(['sweep', fixture, '--models', tiny, '--fusion', 'max', '--codecs', 'none', '--out', out]);
    assert.equal(bad.code, 3);
    assert.match(bad.stderr, /results\.json: not a sweep results array/);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
