// Public API of @shop/pg-testing: a throwaway PostgreSQL cluster for tests.
export {
  startPostgres,
  freePort,
  type PostgresCluster,
  type ClusterOptions,
  type RoleSpec,
  type TlsOptions,
} from './cluster.ts';
export { findPostgresBin, serverUser, POSTGRES_BIN_ENV, POSTGRES_ROOT, SERVER_USER } from './postgres-bin.ts';
export { TEST_DATABASE_ENV, testEngine, sharedCluster, testDatabaseUrl } from './shared.ts';
