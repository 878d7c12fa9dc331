// Test support shared by this package's tests and by the services' tests.
export * from './raw-http.ts';
export * from './error-table.ts';
export * from './service-process.ts';
export * from './database.ts';
export * from './otlp-receiver.ts';
