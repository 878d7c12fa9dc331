#!/bin/sh
# Entrypoint of compose's postgres service (compose.postgres.yaml), on the
# official postgres image or the local stand-in alike. As root: copies the
# server certificate and key (PG_TLS_DIR: postgres.crt.pem, postgres.key.pem)
# and the CAs client certificates must chain to (PG_CLIENT_CA_FILES, several
# files joined: e.g. SPIRE's bundle and the static CA) where only postgres
# reads them, then hands over to the image's docker-entrypoint.sh with TLS on
# and this folder's pg_hba.conf / pg_ident.conf (certificate logins only).
set -eu
# SHOP_DIR (this folder's mount) and TLS_OUT are only moved by the host test of these scripts.
shop="${SHOP_DIR:-/shop}"
tls="${TLS_OUT:-/var/lib/postgresql/tls}"
install -d -o postgres -g postgres -m 700 "$tls"
install -o postgres -g postgres -m 600 "$PG_TLS_DIR/postgres.crt.pem" "$tls/server.crt"
install -o postgres -g postgres -m 600 "$PG_TLS_DIR/postgres.key.pem" "$tls/server.key"
: > "$tls/client-ca.crt"
for f in $PG_CLIENT_CA_FILES; do
  if [ -s "$f" ]; then cat "$f" >> "$tls/client-ca.crt"; else echo "shop-entrypoint.sh: $f is missing or empty" >&2; exit 1; fi
done
chown postgres:postgres "$tls/client-ca.crt"
chmod 600 "$tls/client-ca.crt"
install -o postgres -g postgres -m 600 "$shop/pg_hba.conf" "$tls/pg_hba.conf"
install -o postgres -g postgres -m 600 "$shop/pg_ident.conf" "$tls/pg_ident.conf"
exec docker-entrypoint.sh "$@" \
  -c ssl=on \
  -c ssl_min_protocol_version=TLSv1.3 \
  -c "ssl_cert_file=$tls/server.crt" \
  -c "ssl_key_file=$tls/server.key" \
  -c "ssl_ca_file=$tls/client-ca.crt" \
  -c "hba_file=$tls/pg_hba.conf" \
  -c "ident_file=$tls/pg_ident.conf"
