// The MQTT topic tree. One versioned root, then the run ("session") so several replays can share a broker, then who
// speaks: an agent (vehicle or roadside unit) or a fusion node, then what it says.
//
//   v2xfuse/v1/{session}/agent/{agentId}/{features|objects|points|status}
//   v2xfuse/v1/{session}/fusion/{fusionId}/result
//
// The sender id sits in the topic so a broker ACL can tie it to the MQTT user name (deploy/mosquitto/acl: `%u`):
// an agent can then publish only under its own id. Segments are validated because a '+', '#' or '/' inside an id
// would silently widen a subscription or move a message under another sender.

export const TOPIC_ROOT = 'v2xfuse/v1';

export const AGENT_TOPIC_KINDS = ['features', 'objects', 'points', 'status'] as const;
export type AgentTopicKind = (typeof AGENT_TOPIC_KINDS)[number];
export type FusionTopicKind = 'result';
export type TopicRole = 'agent' | 'fusion';

/** The longest session or sender id accepted in a topic segment. */
export const MAX_TOPIC_SEGMENT_LENGTH = 64;

export type ParsedTopic =
  | { session: string; role: 'agent'; id: string; kind: AgentTopicKind }
  | { session: string; role: 'fusion'; id: string; kind: FusionTopicKind };

export class TopicError extends Error {
  readonly userFacing = true;
  constructor(
    /** Which segment was refused: 'session', 'agent id', 'fusion id', or 'kind'. */
    readonly field: string,
    readonly value: string,
    reason: string,
  ) {
    super(`invalid MQTT topic ${field} ${JSON.stringify(value)}: ${reason}`);
    this.name = 'TopicError';
  }
}

function segmentProblem(value: string): string | undefined {
  if (value.length === 0) return 'it is empty';
  if (value.length > MAX_TOPIC_SEGMENT_LENGTH) return `it is longer than ${MAX_TOPIC_SEGMENT_LENGTH} characters`;
  if (value.includes('/')) return "it contains '/' (a topic level separator)";
  if (value.includes('+') || value.includes('#')) return "it contains an MQTT wildcard ('+' or '#')";
  if (value.includes('\u0000')) return 'it contains a NUL character';
  return undefined;
}

/** Throws TopicError unless `value` can be one topic level (a session or a sender id). */
export function assertTopicSegment(field: string, value: string): void {
  const problem = segmentProblem(value);
  if (problem !== undefined) throw new TopicError(field, value, problem);
}

export function agentTopic(session: string, agentId: string, kind: AgentTopicKind): string {
  assertTopicSegment('session', session);
  assertTopicSegment('agent id', agentId);
  if (!(AGENT_TOPIC_KINDS as readonly string[]).includes(kind)) {
    throw new TopicError('kind', kind, `expected one of ${AGENT_TOPIC_KINDS.join(', ')}`);
  }
  return `${TOPIC_ROOT}/${session}/agent/${agentId}/${kind}`;
}

export function fusionResultTopic(session: string, fusionId: string): string {
  assertTopicSegment('session', session);
  assertTopicSegment('fusion id', fusionId);
  return `${TOPIC_ROOT}/${session}/fusion/${fusionId}/result`;
}

/** Every agent's messages of every kind in one session. */
export function allAgentsFilter(session: string): string {
  assertTopicSegment('session', session);
  return `${TOPIC_ROOT}/${session}/agent/+/+`;
}

/** Every agent's messages of one kind in one session (e.g. only 'features'). */
export function agentKindFilter(session: string, kind: AgentTopicKind): string {
  assertTopicSegment('session', session);
  if (!(AGENT_TOPIC_KINDS as readonly string[]).includes(kind)) {
    throw new TopicError('kind', kind, `expected one of ${AGENT_TOPIC_KINDS.join(', ')}`);
  }
  return `${TOPIC_ROOT}/${session}/agent/+/${kind}`;
}

/** Every fusion node's results in one session. */
export function fusionResultsFilter(session: string): string {
  assertTopicSegment('session', session);
  return `${TOPIC_ROOT}/${session}/fusion/+/result`;
}

const ROOT_LEVELS = TOPIC_ROOT.split('/');

/**
 * Reads a topic of this tree back into its parts; undefined for anything else (another root or version, a wrong
 * number of levels, an unknown role or kind, an invalid segment). Receivers use it to route and to learn the sender
 * id the broker vouched for.
 */
/**
 * The replay clock of a lockstep replay (`v2xfuse run` as fast as possible): the frame index every agent may
 * process next, as decimal text, retained. Not part of the V2X protocol: a test harness's metronome, so that all
 * agents capture "at once" as synchronised sensors do, and latency is measured per frame instead of per queue.
 */
export function replayTickTopic(session: string): string {
  assertTopicSegment('session', session);
  return `${TOPIC_ROOT}/${session}/replay/tick`;
}

/**
 * The start of a paced replay whose agents first prepare (`v2xfuse run --preencode-collaborators`): the run
 * publishes the epoch (capture time of frame 0, ns, decimal) here, retained, once every agent says it is running.
 */
export function replayStartTopic(session: string): string {
  assertTopicSegment('session', session);
  return `${TOPIC_ROOT}/${session}/replay/start`;
}

export function parseTopic(topic: string): ParsedTopic | undefined {
  const levels = topic.split('/');
  if (levels.length !== ROOT_LEVELS.length + 4) return undefined;
  for (let i = 0; i < ROOT_LEVELS.length; i++) if (levels[i] !== ROOT_LEVELS[i]) return undefined;
  const [session, role, id, kind] = levels.slice(ROOT_LEVELS.length) as [string, string, string, string];
  if (segmentProblem(session) !== undefined || segmentProblem(id) !== undefined) return undefined;
  if (role === 'agent') {
    if (!(AGENT_TOPIC_KINDS as readonly string[]).includes(kind)) return undefined;
    return { session, role, id, kind: kind as AgentTopicKind };
  }
  if (role === 'fusion') {
    if (kind !== 'result') return undefined;
    return { session, role, id, kind };
  }
  return undefined;
}
