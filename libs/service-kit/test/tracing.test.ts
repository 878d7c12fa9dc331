// Tracing is configured by the standard OTEL_* variables only, and is off
// (the SDK not even loaded, every span a no-op) without an OTLP endpoint.
// Each case runs in a process of its own: the SDK registers itself globally.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { tracingSettings } from '../src/tracing.ts';
import { startOtlpReceiver, type OtlpReceiver } from './support/otlp-receiver.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

// Starts tracing as runService does, makes one span with the library's tracer, shuts down.
const PROBE = `
import { trace } from '@opentelemetry/api';
import { startTracing } from '@shop/service-kit';
const tracing = await startTracing({ serviceName: 'probe', selfId: 'spiffe://example.org/probe' });
const span = trace.getTracer('@shop/auth').startSpan('probe span');
const recording = span.isRecording();
span.end();
await tracing?.shutdown();
process.stdout.write(JSON.stringify({ started: tracing !== undefined, recording }));
`;

let receiver: OtlpReceiver;
before(async () => {
  receiver = await startOtlpReceiver();
});
after(async () => {
  await receiver.close();
});

async function probe(otel: Record<string, string>): Promise<{ started: boolean; recording: boolean }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OTEL_')) env[k] = v;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', PROBE], {
    cwd: ROOT,
    env: { ...env, ...otel },
    timeout: 60_000,
  });
  return JSON.parse(stdout) as { started: boolean; recording: boolean };
}

test('tracingSettings: on with an OTLP endpoint (positive control), off without one or when disabled', () => {
  assert.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).enabled, true);
  assert.equal(
    tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }).enabled,
    true,
  );
  assert.equal(tracingSettings({}).enabled, false);
  assert.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }).enabled, false);
  assert.equal(tracingSettings({ OTEL_SERVICE_NAME: 'x', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }).enabled, false);
  const disabled = tracingSettings({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
  assert.equal(disabled.enabled, false);
  assert.match(disabled.reason, /OTEL_SDK_DISABLED/);
});

test('with an endpoint, spans are exported as OTLP/HTTP JSON with service.name and spiffe.self.id (positive control)', async () => {
  const before = receiver.spans.length;
  const r = await probe({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
  assert.deepEqual(r, { started: true, recording: true });
  const [span] = receiver.spans.slice(before).filter((s) => s.name === 'probe span');
  assert.ok(span, 'the probe span arrived');
  assert.equal(span.resource['service.name'], 'probe');
  assert.equal(span.resource['spiffe.self.id'], 'spiffe://example.org/probe');
});

test('OTEL_SERVICE_NAME wins over the service name, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given', async () => {
  const before = receiver.spans.length;
  const r = await probe({
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'renamed',
  });
  assert.equal(r.started, true);
  const [span] = receiver.spans.slice(before);
  assert.equal(span?.resource['service.name'], 'renamed');
});

test('OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf sends protobuf', async () => {
  const before = receiver.contentTypes.length;
  const r = await probe({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' });
  assert.equal(r.started, true);
  assert.deepEqual(receiver.contentTypes.slice(before), ['application/x-protobuf']);
});

test('OTEL_TRACES_SAMPLER=always_off: tracing on, the span not recorded, nothing exported', async () => {
  const before = receiver.requests;
  const r = await probe({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER: 'always_off' });
  assert.deepEqual(r, { started: true, recording: false });
  assert.equal(receiver.requests, before);
});

test('without an endpoint no SDK starts, spans are no-ops and nothing is sent, whatever else OTEL_* says', async () => {
  const before = receiver.requests;
  assert.deepEqual(await probe({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'x' }), {
    started: false,
    recording: false,
  });
  assert.deepEqual(await probe({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }), {
    started: false,
    recording: false,
  });
  assert.equal(receiver.requests, before);
});
