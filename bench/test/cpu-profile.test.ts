// Profile summaries: self time by place and function, idle left out, and the
// window that leaves a server's start-up out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { placeOf, summarizeProfile, type CpuProfile } from '../support/cpu-profile.ts';

test('placeOf names packages, node: modules, @shop libraries and native frames', () => {
  assert.equal(placeOf('file:///w/node_modules/undici/lib/client.js', 'f'), 'undici');
  assert.equal(placeOf('file:///w/node_modules/@fastify/ajv/index.js', 'f'), '@fastify/ajv');
  assert.equal(placeOf('node:internal/tls/wrap', 'f'), 'node:tls/wrap');
  assert.equal(placeOf('node:_http_server', 'f'), 'node:_http_server');
  assert.equal(placeOf('file:///w/libs/auth/src/fastify.ts', 'f'), '@shop/auth');
  assert.equal(placeOf('', '(garbage collector)'), '(garbage collector)');
  assert.equal(placeOf('', 'getPeerCertificate'), '(native) getPeerCertificate');
});

// Three frames: idle, a TLS function, an undici function; samples at 1 ms steps.
const profile: CpuProfile = {
  nodes: [
    { id: 1, hitCount: 4, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
    { id: 2, hitCount: 3, callFrame: { functionName: 'verify', url: 'node:internal/tls/wrap', lineNumber: 9 } },
    {
      id: 3,
      hitCount: 1,
      callFrame: { functionName: 'dispatch', url: 'file:///w/node_modules/undici/x.js', lineNumber: 0 },
    },
  ],
  startTime: 0,
  endTime: 8000,
  samples: [2, 2, 2, 1, 1, 1, 1, 3],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
};

test('summarizeProfile shares out the busy samples and leaves idle out', () => {
  const s = summarizeProfile(profile);
  assert.equal(s.samples, 4);
  assert.deepEqual(s.byPlace, [
    { name: 'node:tls/wrap', percent: 75 },
    { name: 'undici', percent: 25 },
  ]);
  assert.deepEqual(s.byFunction[0], { name: 'verify (node:tls/wrap:10)', percent: 75 });
});

test('summarizeProfile counts only the window before the end when asked', () => {
  // Samples at 1..8 ms; the last 5 ms up to the end are 3..8: one TLS sample, four idle, one undici.
  const s = summarizeProfile(profile, 8, { fromEndMs: 5, toEndMs: 0 });
  assert.equal(s.samples, 2);
  assert.deepEqual(s.byPlace, [
    { name: 'node:tls/wrap', percent: 50 },
    { name: 'undici', percent: 50 },
  ]);
  // Positive control: a window over the whole profile gives the same as no window.
  assert.deepEqual(summarizeProfile(profile, 8, { fromEndMs: 8, toEndMs: 0 }), summarizeProfile(profile));
});
