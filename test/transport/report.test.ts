import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AgentNodeSummary, type FusionNodeSummary, buildRunReport, formatRunReport, percentiles } from '../../src/transport/index.ts';

test('percentiles use the nearest rank', () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  const p = percentiles(v);
  assert.equal(p.count, 100);
  assert.equal(p.p50, 50);
  assert.equal(p.p95, 95);
  assert.equal(p.p99, 99);
  assert.equal(p.mean, 50.5);
  assert.deepEqual(percentiles([7]), { count: 1, mean: 7, p50: 7, p95: 7, p99: 7 });
  assert.ok(Number.isNaN(percentiles([]).p50));
});

function agent(id: string, features: number[], stageMs: Record<string, number[]> = {}): AgentNodeSummary {
  return {
    agentId: id, kind: id.startsWith('-') ? 'rsu' : 'vehicle', mode: 'intermediate', codec: 'int8+deflate', modelId: 'm',
    protocolVersion: 4, frames: features.length, messageBytes: { features, status: [40, 41] }, stageMs, perFrame: [], reconnects: 0,
  };
}

test('the report counts collaborators on the V2X link and the ego apart, at 10 Hz', () => {
  const fusionNode: FusionNodeSummary = {
    egoId: '100', mode: 'intermediate', modelId: 'm', protocolVersion: 4, framesFused: 3,
    settings: { combine: 'attention', tracking: true, motion: 'cv', predictor: 'learned' },
    dropped: { malformed: 2 }, droppedByAgent: { '101': { malformed: 2 } }, unused: { '101': 1 },
    stageMs: { head: [10, 20, 30] }, transportMs: [1, 2, 3], reconnects: 0,
  };
  const inputs = {
    dataset: 'd', scenario: 's', ego: '100', fusion: 'intermediate', codec: 'int8+deflate', broker: 'embedded', frames: 3,
    agents: [agent('100', [4_000_000, 4_000_000, 4_000_000], { pfn: [5, 6, 7] }), agent('101', [1000, 2000, 3000], { pfn: [8, 9, 10] }), agent('-1', [500, 500, 500])],
    fusionNode, ap: { '0.3': 0.9, '0.5': 0.8, '0.7': 0.5 }, byClass: {}, endToEndMs: [100, 200, 300],
    framesUsed: { '100': 3, '101': 2 }, extraDropped: { deadline: 1 }, wallSeconds: 12,
  };
  const r = buildRunReport(inputs);
  // Collaborators only: 101's three messages and -1's three; the ego's 4 MB maps do not count as link bytes.
  assert.equal(r.bytesPerMessage.features.count, 6);
  assert.equal(r.bytesPerMessage.features.mean, (1000 + 2000 + 3000 + 1500) / 6);
  assert.equal(r.bytesPerMessage.all.mean, r.bytesPerMessage.features.mean);
  assert.equal(r.egoBytesPerMessage.features.mean, 4_000_000);
  // 2000 bytes mean × 8 bits × 10 Hz = 0.16 Mbit/s.
  assert.equal(r.mbpsPerAgent['101'], 0.16);
  assert.equal(r.mbpsPerAgent['-1'], 0.04);
  // A hybrid agent's two messages a frame count together.
  const hybrid = { ...agent('102', [1000, 1000]), perFrame: [{ index: 0, captureNs: '0', startWallNs: '0', publishWallNs: '0', bytes: 3000 }] };
  const r2 = buildRunReport({ ...inputs, agents: [...inputs.agents, hybrid] });
  assert.equal(r2.mbpsPerAgent['102'], 0.24);
  assert.equal(r.mbpsPerAgent['100'], undefined);
  assert.equal(r.latencyMs['agent.pfn'].count, 6);
  assert.equal(r.latencyMs['fusion.head'].p50, 20);
  assert.equal(r.latencyMs.endToEnd.p95, 300);
  assert.deepEqual(r.dropped, { malformed: 2, unused: 1, deadline: 1 });
  assert.equal(r.agents['101'].framesUsed, 2);
  const text = formatRunReport(r);
  assert.match(text, /@0\.5 0\.800/);
  assert.match(text, /dropped: malformed 2, unused 1, deadline 1/);
});
