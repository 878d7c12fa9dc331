// HTTP requests for the closed loop, through undici: the same client code for
// plaintext, TLS, raw mTLS, the Go peer and @shop/auth's dispatcher; only the
// dispatcher differs.
import { request, type Dispatcher } from 'undici';
import type { Attempt } from './closed-loop.ts';

/** HttpTarget is one HTTP request to repeat. */
export interface HttpTarget {
  url: string;
  dispatcher: Dispatcher;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** body is sent as is (a JSON string, say), or made per request by a function. */
  body?: string | (() => string);
  /** expect is the status that counts as success. Default: 200. */
  expect?: number;
  /** accept checks the response body too (read as text); without it the body is discarded. */
  accept?: (body: string) => boolean;
  /** reset closes the connection after the response: one connection per request. Default: false. */
  reset?: boolean;
}

/** httpAttempt returns one request of `t` for runClosedLoop. */
export function httpAttempt(t: HttpTarget): Attempt {
  const expect = t.expect ?? 200;
  return async () => {
    const res = await request(t.url, {
      dispatcher: t.dispatcher,
      method: t.method ?? 'GET',
      headers: t.headers,
      body: typeof t.body === 'function' ? t.body() : t.body,
      reset: t.reset ?? false,
    });
    if (!t.accept) {
      await res.body.dump();
      return res.statusCode === expect;
    }
    const text = await res.body.text();
    return res.statusCode === expect && t.accept(text);
  };
}
