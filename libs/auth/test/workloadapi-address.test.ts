import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthError } from '../src/errors.ts';
import {
  SOCKET_ENV,
  endpointFromEnv,
  parseEndpointAddress,
  resolveEndpoint,
  targetFromAddress,
} from '../src/workloadapi/address.ts';

function assertInvalid(input: string, problem: RegExp, run: () => unknown = () => parseEndpointAddress(input)): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof AuthError, `expected an AuthError for ${JSON.stringify(input)}`);
    assert.equal(err.code, 'AUTH_ERR_WORKLOAD_ENDPOINT_INVALID');
    assert.ok(err.message.includes(JSON.stringify(input)), `message names the input: ${err.message}`);
    assert.match(err.message, /expected unix:\/\/\/absolute\/path\/to\/socket or tcp:\/\/<IP address>:<port>/);
    assert.match(err.message, problem);
    return true;
  });
}

describe('parseEndpointAddress: accepted forms', () => {
  const valid: { input: string; target: string; transport: 'unix' | 'tcp'; socketPath?: string }[] = [
    {
      input: 'unix:///run/spire/agent.sock',
      target: 'unix:/run/spire/agent.sock',
      transport: 'unix',
      socketPath: '/run/spire/agent.sock',
    },
    { input: 'unix:///tmp/a%20b.sock', target: 'unix:/tmp/a b.sock', transport: 'unix', socketPath: '/tmp/a b.sock' },
    // No authority at all is the literal reading of the standard; SPIRE and go-spiffe accept it too.
    { input: 'unix:/run/agent.sock', target: 'unix:/run/agent.sock', transport: 'unix', socketPath: '/run/agent.sock' },
    { input: 'tcp://127.0.0.1:8081', target: 'ipv4:127.0.0.1:8081', transport: 'tcp' },
    { input: 'tcp://10.0.0.7:1', target: 'ipv4:10.0.0.7:1', transport: 'tcp' },
    // RFC 3986 §3.1: the scheme is case-insensitive.
    {
      input: 'UNIX:///run/agent.sock',
      target: 'unix:/run/agent.sock',
      transport: 'unix',
      socketPath: '/run/agent.sock',
    },
    { input: 'tcp://[::1]:8081', target: 'ipv6:[::1]:8081', transport: 'tcp' },
    { input: 'tcp://[2001:db8::5]:65535', target: 'ipv6:[2001:db8::5]:65535', transport: 'tcp' },
  ];
  for (const v of valid) {
    test(`${v.input} → ${v.target}`, () => {
      const ep = parseEndpointAddress(v.input);
      assert.equal(ep.target, v.target);
      assert.equal(ep.transport, v.transport);
      assert.equal(ep.address, v.input);
      assert.equal(ep.socketPath, v.socketPath);
      assert.equal(targetFromAddress(v.input), v.target);
    });
  }
});

describe('parseEndpointAddress: rejected forms', () => {
  test('positive control: the canonical forms pass', () => {
    assert.doesNotThrow(() => parseEndpointAddress('unix:///run/spire/agent.sock'));
    assert.doesNotThrow(() => parseEndpointAddress('tcp://127.0.0.1:8081'));
  });

  const invalid: { input: string; problem: RegExp }[] = [
    { input: '', problem: /empty/ },
    { input: '/run/spire/agent.sock', problem: /scheme is missing/ },
    { input: 'http://127.0.0.1:8081', problem: /scheme must be "unix" or "tcp", not "http"/ },
    { input: 'dns:///localhost:8081', problem: /scheme must be "unix" or "tcp"/ },
    // unix
    { input: 'unix://agent.sock', problem: /must not include a host \("agent\.sock"\)/ },
    { input: 'unix://localhost/run/agent.sock', problem: /must not include a host/ },
    { input: 'unix://user@/run/agent.sock', problem: /user info/ },
    { input: 'unix:run/agent.sock', problem: /must be absolute/ },
    { input: 'unix:', problem: /must include the socket path/ },
    { input: 'unix://', problem: /must include the socket path/ },
    { input: 'unix:///', problem: /must include the socket path/ },
    { input: 'unix:///run/spire/', problem: /not a directory/ },
    { input: 'unix:///run/agent.sock?x=1', problem: /must not include a query/ },
    { input: 'unix:///run/agent.sock#frag', problem: /must not include a fragment/ },
    { input: 'unix:///run/a%zz.sock', problem: /percent-escape/ },
    { input: 'unix:///run/a%00.sock', problem: /NUL/ },
    { input: 'unix:///run/agent sock', problem: /spaces or control characters/ },
    // tcp
    { input: 'tcp://localhost:8081', problem: /must be an IP address, not a name \("localhost"\)/ },
    { input: 'tcp://spire-agent.internal:8081', problem: /not a name/ },
    { input: 'tcp://127.0.0.1', problem: /must include a port/ },
    { input: 'tcp://127.0.0.1:', problem: /must include a port/ },
    { input: 'tcp://[::1]', problem: /must include a port/ },
    { input: 'tcp://127.0.0.1:8081/agent', problem: /must not include a path/ },
    { input: 'tcp://127.0.0.1:8081/', problem: /must not include a path/ },
    { input: 'tcp://127.0.0.1:0', problem: /port must be a number from 1 to 65535/ },
    { input: 'tcp://127.0.0.1:65536', problem: /port must be a number from 1 to 65535/ },
    { input: 'tcp://127.0.0.1:http', problem: /port must be a number/ },
    { input: 'tcp://::1:8081', problem: /IPv6 address must be written in brackets/ },
    { input: 'tcp://[::1:8081', problem: /closing "\]"/ },
    { input: 'tcp://[127.0.0.1]:8081', problem: /not an IPv6 address/ },
    { input: 'tcp://user@127.0.0.1:8081', problem: /user info/ },
    { input: 'tcp://127.0.0.1:8081?x', problem: /query/ },
    { input: 'tcp://127.0.0.1:8081#x', problem: /fragment/ },
    { input: 'tcp:127.0.0.1:8081', problem: /must include an IP address and a port/ },
    { input: 'tcp://', problem: /must include an IP address and a port/ },
  ];
  for (const c of invalid) {
    test(`rejects ${JSON.stringify(c.input)}`, () => {
      assertInvalid(c.input, c.problem);
    });
  }
});

describe('endpointFromEnv', () => {
  test('reads SPIFFE_ENDPOINT_SOCKET', () => {
    assert.equal(SOCKET_ENV, 'SPIFFE_ENDPOINT_SOCKET');
    const ep = endpointFromEnv({ SPIFFE_ENDPOINT_SOCKET: 'unix:///run/spire/agent.sock' });
    assert.equal(ep?.target, 'unix:/run/spire/agent.sock');
  });

  test('is undefined when the variable is unset or empty', () => {
    assert.equal(endpointFromEnv({}), undefined);
    assert.equal(endpointFromEnv({ SPIFFE_ENDPOINT_SOCKET: '' }), undefined);
  });

  test('names the variable when its value is invalid', () => {
    assert.doesNotThrow(() => endpointFromEnv({ SPIFFE_ENDPOINT_SOCKET: 'tcp://127.0.0.1:1' })); // positive control
    assertInvalid('tcp://localhost:1', /from SPIFFE_ENDPOINT_SOCKET/, () =>
      endpointFromEnv({ SPIFFE_ENDPOINT_SOCKET: 'tcp://localhost:1' }),
    );
  });

  test('defaults to process.env', () => {
    const saved = process.env.SPIFFE_ENDPOINT_SOCKET;
    try {
      process.env.SPIFFE_ENDPOINT_SOCKET = 'unix:///from/process.sock';
      assert.equal(endpointFromEnv()?.socketPath, '/from/process.sock');
    } finally {
      if (saved === undefined) delete process.env.SPIFFE_ENDPOINT_SOCKET;
      else process.env.SPIFFE_ENDPOINT_SOCKET = saved;
    }
  });
});

describe('resolveEndpoint', () => {
  const env = { SPIFFE_ENDPOINT_SOCKET: 'unix:///from/env.sock' };

  test('the explicit address wins over the environment', () => {
    assert.equal(resolveEndpoint('tcp://127.0.0.1:9', env).target, 'ipv4:127.0.0.1:9');
  });

  test('falls back to SPIFFE_ENDPOINT_SOCKET', () => {
    assert.equal(resolveEndpoint(undefined, env).socketPath, '/from/env.sock');
  });

  test('fails with AUTH_ERR_WORKLOAD_ENDPOINT_MISSING when neither is set', () => {
    assert.throws(
      () => resolveEndpoint(undefined, {}),
      (err: unknown) =>
        err instanceof AuthError &&
        err.code === 'AUTH_ERR_WORKLOAD_ENDPOINT_MISSING' &&
        err.message.includes('SPIFFE_ENDPOINT_SOCKET'),
    );
  });

  test('an invalid explicit address is not replaced by the environment', () => {
    assertInvalid('unix://x', /from the address option/, () => resolveEndpoint('unix://x', env));
  });
});
