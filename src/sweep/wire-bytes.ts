// What a message costs on the wire beyond its protobuf bytes: MQTT's PUBLISH framing. The agent nodes publish
// sensor messages at QoS 0 (no packet identifier) and, on MQTT 5, with a message-expiry property; the sweep
// counts these bytes so that its bandwidth is what a link carries, not only what protobuf writes.
// Framing (MQTT 3.1.1 §3.3, MQTT 5 §3.3): fixed header (1 byte type/flags + remaining length as a 1–4 byte
// varint), then the topic (2-byte length + UTF-8), the packet identifier (2 bytes, QoS 1 and 2 only), on MQTT 5
// the properties (varint length + properties), then the payload. TCP/IP headers are not counted.

export interface PublishFraming {
  /** 4 = MQTT 3.1.1, 5 = MQTT 5 (the default of the agent nodes). */
  protocolVersion: 4 | 5;
  qos?: 0 | 1 | 2;
  /** MQTT 5: the message carries a message-expiry interval (property 0x02, 4-byte integer), as sensor messages do. */
  messageExpiry?: boolean;
}

/** Bytes of MQTT's variable byte integer (the remaining length, the property length). */
export function mqttVarintBytes(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 268_435_455) throw new RangeError(`MQTT variable byte integer out of range: ${n}`);
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Whole PUBLISH packet bytes for a payload of `payloadBytes` on `topic`: framing plus payload. */
export function mqttPublishBytes(topic: string, payloadBytes: number, framing: PublishFraming): number {
  const topicBytes = 2 + Buffer.byteLength(topic, 'utf8');
  const packetId = (framing.qos ?? 0) > 0 ? 2 : 0;
  let properties = 0;
  if (framing.protocolVersion === 5) {
    const props = framing.messageExpiry ? 1 + 4 : 0;
    properties = mqttVarintBytes(props) + props;
  }
  const remaining = topicBytes + packetId + properties + payloadBytes;
  return 1 + mqttVarintBytes(remaining) + remaining;
}

/** The framing of the agent nodes' sensor messages: MQTT 5, QoS 0, with a message expiry. */
export const SENSOR_MESSAGE_FRAMING: PublishFraming = { protocolVersion: 5, qos: 0, messageExpiry: true };

/** Bits in a megabit, as the published tables count them (OpenCOOD, Where2comm: 10^6). */
const BITS_PER_MEGABIT = 1e6;

/** Megabits per message, the unit of V2X bandwidth tables (e.g. 2.7 Mb per message is 27 Mbps at 10 Hz). */
export function megabitsPerMessage(bytes: number): number {
  return (bytes * 8) / BITS_PER_MEGABIT;
}

/** Megabits per second of one agent sending `bytesPerFrame` every frame at `rateHz`. */
export function megabitsPerSecond(bytesPerFrame: number, rateHz = 10): number {
  return megabitsPerMessage(bytesPerFrame) * rateHz;
}

/** The 27 Mbps DSRC/C-V2X channel of the published tables, as bytes per message at 10 Hz (2.7 Mb). */
export const CHANNEL_27MBPS_BYTES_PER_MESSAGE = (2.7 * BITS_PER_MEGABIT) / 8;
