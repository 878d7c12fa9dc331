import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Env } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';

describe('Env', () => {
  test('defaults when unset, values when valid (positive controls)', () => {
    const env = new Env({
      PORT: '8443',
      RATE: '0.5',
      MODE: 'grpc',
      URL: 'https://127.0.0.1:8443/',
      TARGET: '127.0.0.1:50051',
    });
    assert.equal(env.port('PORT', 1), 8443);
    assert.equal(env.port('OTHER_PORT', 9080), 9080);
    assert.equal(env.number('RATE', 0, { min: 0, max: 1 }), 0.5);
    assert.equal(env.oneOf('MODE', ['grpc', 'http'] as const, 'http'), 'grpc');
    assert.equal(env.url('URL', 'https://x'), 'https://127.0.0.1:8443');
    assert.equal(env.hostPort('TARGET', 'x:1'), '127.0.0.1:50051');
    assert.equal(env.string('EMPTY', 'fallback'), 'fallback');
  });
  const bad: [string, (e: Env) => unknown, string][] = [
    ['PORT', (e) => e.port('PORT', 1), 'must be an integer'],
    ['PORT', (e) => e.int('PORT', 1, { min: 1, max: 10 }), 'must be an integer'],
    ['RATE', (e) => e.number('RATE', 0, { min: 0, max: 1 }), 'must be a number'],
    ['MODE', (e) => e.oneOf('MODE', ['grpc', 'http'] as const, 'http'), 'must be one of grpc, http'],
    ['URL', (e) => e.url('URL', 'https://x'), 'must be an absolute URL'],
    ['TARGET', (e) => e.hostPort('TARGET', 'x:1'), 'must be host:port'],
  ];
  for (const [name, read, fragment] of bad) {
    test(`a bad ${name} is named in the error`, () => {
      const env = new Env({ PORT: 'eighty', RATE: 'lots', MODE: 'carrier-pigeon', URL: 'not a url', TARGET: 'nohost' });
      assert.throws(
        () => read(env),
        (e: unknown) => e instanceof ConfigError && e.variable === name && e.message.includes(fragment),
      );
    });
  }
  test('out-of-range and wrong-protocol values are refused', () => {
    assert.throws(() => new Env({ PORT: '70000' }).port('PORT', 1), /PORT: must be between 0 and 65535/);
    assert.throws(() => new Env({ URL: 'http://x' }).url('URL', 'https://x'), /URL: must use https:/);
  });
});
