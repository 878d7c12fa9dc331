// @shop/auth/undici: an undici dispatcher (and connector) that dials with our
// SVID and verifies the server's SPIFFE ID on every connection.
export { createMtlsDispatcher, createMtlsConnector, type MtlsDispatcherOptions } from './adapters/undici.ts';
