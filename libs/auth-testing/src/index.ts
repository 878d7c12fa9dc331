// Test support shared by this package's tests and by the services' tests.
export * from './test-ca.ts';
export * from './memory-source.ts';
export * from './peer-cases.ts';
export * from './echo-service.ts';
export * from './fake-workload-api.ts';
export * from './temp-dir.ts';
export * from './header-peer.ts';
export * from './errors-doc.ts';
export * from './hostile-servers.ts';
