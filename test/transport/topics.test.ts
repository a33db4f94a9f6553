import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AGENT_TOPIC_KINDS,
  TopicError,
  agentKindFilter,
  agentTopic,
  allAgentsFilter,
  fusionResultTopic,
  fusionResultsFilter,
  parseTopic,
} from '../../src/transport/index.ts';

test('agent and fusion topics have the documented shape and parse back to their parts', () => {
  for (const kind of AGENT_TOPIC_KINDS) {
    const t = agentTopic('run-7', '-1', kind);
    assert.equal(t, `v2xfuse/v1/run-7/agent/-1/${kind}`);
    assert.deepEqual(parseTopic(t), { session: 'run-7', role: 'agent', id: '-1', kind });
  }
  const r = fusionResultTopic('run-7', 'ego-100');
  assert.equal(r, 'v2xfuse/v1/run-7/fusion/ego-100/result');
  assert.deepEqual(parseTopic(r), { session: 'run-7', role: 'fusion', id: 'ego-100', kind: 'result' });
});

test('filters match exactly the topics they are for (MQTT wildcard semantics)', () => {
  // A minimal MQTT matcher: '+' one level, '#' the rest.
  const matches = (filter: string, topic: string): boolean => {
    const f = filter.split('/');
    const t = topic.split('/');
    for (let i = 0; i < f.length; i++) {
      if (f[i] === '#') return true;
      if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
    }
    return f.length === t.length;
  };
  assert.equal(allAgentsFilter('s1'), 'v2xfuse/v1/s1/agent/+/+');
  assert.ok(matches(allAgentsFilter('s1'), agentTopic('s1', '100', 'features')));
  assert.ok(matches(allAgentsFilter('s1'), agentTopic('s1', '-1', 'status')));
  assert.ok(!matches(allAgentsFilter('s1'), agentTopic('s2', '100', 'features')), 'another session leaks in');
  assert.ok(!matches(allAgentsFilter('s1'), fusionResultTopic('s1', 'f')), 'results are not agent messages');
  assert.ok(matches(agentKindFilter('s1', 'objects'), agentTopic('s1', '7', 'objects')));
  assert.ok(!matches(agentKindFilter('s1', 'objects'), agentTopic('s1', '7', 'features')));
  assert.ok(matches(fusionResultsFilter('s1'), fusionResultTopic('s1', 'ego')));
  assert.ok(!matches(fusionResultsFilter('s1'), agentTopic('s1', 'ego', 'status')));
});

test('segments that would widen a subscription or move a message under another sender are refused', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['a/b', /'\/'/],
    ['+', /wildcard/],
    ['x#', /wildcard/],
    ['a\u0000b', /NUL/],
    ['x'.repeat(65), /longer than 64/],
  ];
  for (const [value, why] of bad) {
    for (const build of [() => agentTopic(value, '1', 'features'), () => agentTopic('s', value, 'features'), () => fusionResultTopic('s', value), () => allAgentsFilter(value)]) {
      assert.throws(build, (err: unknown) => {
        assert.ok(err instanceof TopicError);
        assert.equal(err.userFacing, true);
        assert.match(err.message, why);
        return true;
      });
    }
  }
  assert.doesNotThrow(() => agentTopic('x'.repeat(64), 'y'.repeat(64), 'points'));
  assert.throws(() => agentTopic('s', '1', 'result' as never), TopicError);
});

test('parseTopic refuses anything that is not a topic of this tree', () => {
  for (const t of [
    'v2xfuse/v2/s/agent/1/features', // another schema version
    'other/v1/s/agent/1/features',
    'v2xfuse/v1/s/agent/1', // too short
    'v2xfuse/v1/s/agent/1/features/extra',
    'v2xfuse/v1/s/agent/1/result', // a kind agents do not send
    'v2xfuse/v1/s/fusion/f/features',
    'v2xfuse/v1/s/viewer/1/status', // unknown role
    'v2xfuse/v1//agent/1/features', // empty session
    'v2xfuse/v1/s/agent//features', // empty id
    `v2xfuse/v1/s/agent/${'x'.repeat(65)}/features`,
  ]) {
    assert.equal(parseTopic(t), undefined, t);
  }
});
