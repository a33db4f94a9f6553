// The sweep stage's public face: the bandwidth-accuracy grid over a sequence (fusion mode × codec × pose noise ×
// latency × loss), run in process with encoder outputs reused across configurations, resumable, and reported as
// results.json / results.csv and a report with Vega-Lite figures (SVG and PNG).
export {
  type FusionChoice,
  type GridSpec,
  type SweepConfiguration,
  type SweepContext,
  type SweepDefinition,
  SweepDefinitionError,
  configurationKey,
  configurationLabel,
  expandGrid,
  expandGrids,
  normalizeConfiguration,
  parseFusionChoice,
  parsePoseNoiseLevel,
  parseSweepDefinition,
} from './grid.ts';
export { type EncoderCacheStats, memoizedSequence, withEncoderCache } from './encoder-cache.ts';
export { type TradeoffPoint, paretoFront } from './pareto.ts';
export { type Figure, renderSvg, svgToPng, sweepFigures, tradeoffPoints } from './plots.ts';
export { type ReportFigure, type ReportInfo, reportHtml, reportMarkdown, resultsCsv } from './report.ts';
export { type RunConfigurationOptions, type SweepResult, runConfiguration } from './run-configuration.ts';
export { type SweepOptions, type SweepProgress, type SweepSummary, SweepOutputError, readResults, runSweep } from './sweep.ts';
export {
  CHANNEL_27MBPS_BYTES_PER_MESSAGE,
  type PublishFraming,
  SENSOR_MESSAGE_FRAMING,
  megabitsPerMessage,
  megabitsPerSecond,
  mqttPublishBytes,
  mqttVarintBytes,
} from './wire-bytes.ts';
