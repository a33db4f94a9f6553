import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHANNEL_27MBPS_BYTES_PER_MESSAGE, SENSOR_MESSAGE_FRAMING, megabitsPerMessage, megabitsPerSecond, mqttPublishBytes, mqttVarintBytes } from '../../src/sweep/index.ts';

test('MQTT variable byte integer sizes change at 128, 16 384 and 2 097 152', () => {
  assert.deepEqual([0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455].map(mqttVarintBytes), [1, 1, 2, 2, 3, 3, 4, 4]);
  assert.throws(() => mqttVarintBytes(268_435_456), RangeError);
});

test('PUBLISH framing, counted by hand', () => {
  // MQTT 3.1.1, QoS 0, topic "a/b", 10-byte payload: remaining = 2 + 3 + 10 = 15 (1-byte varint); 1 + 1 + 15.
  assert.equal(mqttPublishBytes('a/b', 10, { protocolVersion: 4 }), 17);
  // QoS 1 adds the 2-byte packet identifier.
  assert.equal(mqttPublishBytes('a/b', 10, { protocolVersion: 4, qos: 1 }), 19);
  // MQTT 5 without properties still writes a property length (1 byte of 0).
  assert.equal(mqttPublishBytes('a/b', 10, { protocolVersion: 5 }), 18);
  // MQTT 5 with message expiry: property length 1 + (id 0x02 + uint32) 5; remaining 2 + 3 + 6 + 10 = 21.
  assert.equal(mqttPublishBytes('a/b', 10, { protocolVersion: 5, messageExpiry: true }), 23);
  // A payload that pushes the remaining length past 127 takes a 2-byte varint: remaining 2 + 3 + 6 + 200 = 211.
  assert.equal(mqttPublishBytes('a/b', 200, SENSOR_MESSAGE_FRAMING), 1 + 2 + 211);
  // A real feature topic: 'v2xfuse/v1/run-00000000/agent/101/features' is 42 bytes; remaining 2 + 42 + 6 + 65 536.
  const topic = 'v2xfuse/v1/run-00000000/agent/101/features';
  assert.equal(topic.length, 42);
  assert.equal(mqttPublishBytes(topic, 65_536, SENSOR_MESSAGE_FRAMING), 1 + 3 + 2 + 42 + 6 + 65_536);
  // Multi-byte UTF-8 in a topic counts bytes, not characters.
  assert.equal(mqttPublishBytes('ä', 0, { protocolVersion: 4 }), 1 + 1 + 2 + 2);
});

test('the published units: 27 Mbps at 10 Hz is 2.7 Mb per message, 337 500 bytes', () => {
  assert.equal(CHANNEL_27MBPS_BYTES_PER_MESSAGE, 337_500);
  assert.equal(megabitsPerMessage(337_500), 2.7);
  assert.ok(Math.abs(megabitsPerSecond(337_500) - 27) < 1e-9);
});
