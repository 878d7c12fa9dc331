// Public API of @shop/console: start the console in-process (scripts/start.ts does) or build its parts.
export { loadConsoleConfig, type ConsoleConfig, type ServiceTarget } from './config.ts';
export { CONSOLE_ERRORS, consoleError, type ConsoleErrorCode } from './errors.ts';
export { ShopConsole, TRACES_SHOWN, DENIED_TRACES_SHOWN, type ConsoleOptions, type PageModel } from './console.ts';
export { buildConsoleApp, PUBLIC_DIR, OTLP_BODY_LIMIT } from './app.ts';
export { startConsole, type RunningConsole } from './start-console.ts';
export {
  forgedCertificateToggle,
  paymentFaultsToggle,
  presentForgedCertificate,
  type Toggle,
  type ToggleInput,
  type ToggleState,
} from './toggles.ts';
export { spansOfExport, TraceStore, type SpanView, type TraceView, type AttributeValue } from './trace-store.ts';
export { parsePrometheusText, type Sample } from './prometheus-text.ts';
export {
  ModelBuilder,
  RATE_WINDOW_MS,
  type EdgeView,
  type ServiceView,
  type BreakerView,
  type ConsoleModel,
} from './model.ts';
