// The transport stage: the MQTT topic tree, a client link over MQTT.js (MQTT 5 with a 3.1.1 fallback, typed
// connect errors, byte counters, arrival timestamps), the embedded aedes broker, and the renderer of the
// Mosquitto deployment config. Offline policy (QoS 0 dropped and counted, QoS 1 kept): see mqtt-link.ts.
export {
  AGENT_TOPIC_KINDS,
  MAX_TOPIC_SEGMENT_LENGTH,
  TOPIC_ROOT,
  TopicError,
  agentKindFilter,
  agentTopic,
  allAgentsFilter,
  assertTopicSegment,
  fusionResultTopic,
  fusionResultsFilter,
  parseTopic,
  replayTickTopic, replayStartTopic,
  type AgentTopicKind,
  type FusionTopicKind,
  type ParsedTopic,
  type TopicRole,
} from './topics.ts';
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_RECONNECT_PERIOD_MS,
  MqttLink,
  type MqttLinkOptions,
  type MqttLinkStats,
  type MqttMessageHandler,
  type MqttProtocolChoice,
  type MqttPublishOptions,
  type MqttQos,
  type MqttWill,
} from './mqtt-link.ts';
export {
  BrokerRefusedError,
  BrokerTlsError,
  BrokerUnreachableError,
  InvalidBrokerUrlError,
  PublishRefusedError,
  SubscribeRefusedError,
  describeReasonCode,
  redactBrokerUrl,
} from './errors.ts';
export { BrokerListenError, startEmbeddedBroker, type EmbeddedBroker, type EmbeddedBrokerOptions } from './broker.ts';
export {
  MOSQUITTO_DEPLOY_DIR,
  MosquittoConfigError,
  renderDeployedMosquittoConfig,
  renderMosquittoConfig,
  type MosquittoConfigSettings,
} from './mosquitto-config.ts';
export { epochNowNs } from './clock.ts';
export { FaultProxy, FaultProxyError, type FaultCounts, type FaultProxyOptions, type FaultSpec } from './fault-proxy.ts';
// The nodes: an agent that replays and publishes, the fusion node, and a whole deployment with its report.
export { type ReplayOptions, type ReplayedFrame, ScenarioChoiceError, pickScenario, replayAgentFrames } from './replay.ts';
export {
  AGENT_FUSION_MODES,
  type AgentFrameRecord,
  type AgentFusionMode,
  AgentNodeError,
  type AgentNodeOptions,
  type AgentNodeSummary,
  DEFAULT_FEATURE_CODEC,
  DEFAULT_POINT_CODEC,
  SENSOR_MESSAGE_EXPIRY_S,
  runAgentNode,
} from './agent-node.ts';
export { FusionNodeError, type FusionNodeOptions, type FusionNodeSummary, NODE_FUSION_MODES, type NodeFusionMode, runFusionNode } from './fusion-node.ts';
export { type BytesStats, type Percentiles, type ReportInputs, type RunReport, buildRunReport, formatRunReport, percentiles } from './report.ts';
export { RunError, type RunOptions, runDeployment } from './run.ts';
export {
  GROUND_TRUTH_CHANNEL,
  RECORDING_PROFILE,
  type DatasetRecordingOptions,
  RECORDING_COMPRESSIONS,
  RECORDING_DECOMPRESS_HANDLERS,
  RecorderError,
  type RecordingCompression,
  type RecordingSummary,
  SessionRecorder,
  cameraChannel,
  decimatePoints,
  groundTruthScene,
  lidarChannel,
  wireDescriptorSet,
  zstdReady,
} from './recorder.ts';
export { type PredictionSummary, type ScoredFrame, type TrackingSummary, scoreFusionResults } from './score.ts';
