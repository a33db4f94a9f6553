// The viewer stage: `v2xfuse view` serves a three.js page (bundled from web/ with esbuild at start) that draws a
// recording (`v2xfuse run --record`) or follows a live run over the broker.
export { ENVELOPE_KINDS, type Envelope, EnvelopeFormatError, type EnvelopeKind, decodeEnvelopes, encodeEnvelope, encodeEnvelopes } from './envelope.ts';
export { RecordingError, envelopeRoute, readRecording, trimForViewer } from './recording.ts';
export { ViewerBundleError, type ViewerPage, bundleViewerPage } from './bundle.ts';
export { type ViewerServer, ViewerServerError, type ViewerServerOptions, startViewerServer } from './server.ts';
