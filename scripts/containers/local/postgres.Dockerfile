# Stand-in for the official postgres:15-bookworm image, for machines that
# cannot pull it: Debian's postgresql-15 package on the local Debian image
# (DEBIAN_IMAGE, from scripts/containers/local-images.ts), laid out as the
# official image is where compose.postgres.yaml relies on it: the server
# binaries on PATH, listening on every address, a "postgres" account with uid and gid 999, PGDATA at
# /var/lib/postgresql/data, and a docker-entrypoint.sh that initialises an
# empty PGDATA once, runs /docker-entrypoint-initdb.d/*.sh and *.sql against
# a private temporary server, then runs the command as postgres.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
# The account first, so the package keeps its ids; no cluster from the
# package (postgresql-common would make one): the entrypoint makes PGDATA.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && mkdir -p /etc/postgresql-common \
 && printf 'create_main_cluster = false\n' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
# As the official image: the server listens on every address of the container.
RUN sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" /usr/share/postgresql/15/postgresql.conf.sample \
 && grep -F "listen_addresses = '*'" /usr/share/postgresql/15/postgresql.conf.sample
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
