#!/bin/sh
# Run once, when the postgres service's data volume is new (mounted in
# /docker-entrypoint-initdb.d): one role and one database per service. A role
# owns its database and may connect to no other (CONNECT revoked from PUBLIC);
# roles have no password: they log in with their certificate only.
set -eu
for s in order payment inventory; do
  psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres <<SQL
CREATE ROLE "$s" LOGIN;
CREATE DATABASE "$s" OWNER "$s";
REVOKE ALL ON DATABASE "$s" FROM PUBLIC;
SQL
done
