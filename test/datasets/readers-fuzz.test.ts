// Fuzz of the dataset readers (PCD, OPV2V frame yaml, DAIR-V2X-C json) with seeded random and mutated inputs, each
// suite in a worker under a watchdog (fuzz-harness.ts): every input either parses into finite data or is refused
// with a DatasetError naming the file. A TypeError, a RangeError, non-finite numbers let through, or a hang fail
// the test with the case that caused it (replay it with the same seed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FuzzSuite, describeFailures, runFuzz } from './fuzz-harness.ts';

const SUITES: { suite: FuzzSuite; seed: number; cases: number }[] = [
  { suite: 'pcd', seed: 0x9cd, cases: 2000 },
  { suite: 'opv2v', seed: 0x0b2, cases: 600 },
  { suite: 'dair', seed: 0xda1, cases: 300 },
];

for (const { suite, seed, cases } of SUITES) {
  test(`${suite} reader: ${cases} seeded mutations, no crash, no hang, every refusal a DatasetError naming the file`, { timeout: 120_000 }, async () => {
    const run = await runFuzz({ suite, seed, cases });
    assert.equal(run.hung, undefined, `case #${run.hung?.index} (${run.hung?.description}) hung (seed ${seed})`);
    const failures = run.outcomes.filter((o) => o.result === 'other');
    assert.equal(failures.length, 0, `seed ${seed}:\n${describeFailures(run.outcomes)}`);
    // The unmutated inputs (and so the fixtures the mutations start from) parse.
    assert.equal(run.outcomes[0]!.result, 'ok', run.outcomes[0]!.message);
    // Both outcomes occur: mutations that keep a file readable, and refusals; a suite where every case fails the
    // same way would test only the first check of the reader.
    const refused = run.outcomes.filter((o) => o.result === 'dataset-error').length;
    const parsed = run.outcomes.filter((o) => o.result === 'ok').length;
    assert.ok(refused > cases / 10, `only ${refused} refusals`);
    assert.ok(parsed > 1, `only ${parsed} inputs parsed`);
    const fields = new Set(run.outcomes.filter((o) => o.result === 'dataset-error').map((o) => o.message!.split(': ')[1]));
    console.log(`${suite}: ${parsed} parsed, ${refused} refused (${fields.size} distinct fields named) of ${run.outcomes.length}`);
  });
}
