# Stand-ins for ghcr.io/spiffe/spire-server and spire-agent, for machines that
# cannot pull them: FROM scratch with the static binaries of
# scripts/spire/get-spire.ts, laid out as SPIRE's own Dockerfile lays them out
# (binaries in /opt/spire/bin; the server runs as 1000:1000, the agent as root;
# the same default socket and data directories), so compose.yaml runs
# unchanged on either. scripts/containers/local-images.ts prepares the context.
FROM scratch AS spire-server
COPY --chown=1000:1000 server/ /
USER 1000:1000
WORKDIR /opt/spire
ENTRYPOINT ["/opt/spire/bin/spire-server", "run"]

FROM scratch AS spire-agent
COPY agent/ /
USER 0:0
WORKDIR /opt/spire
ENTRYPOINT ["/opt/spire/bin/spire-agent", "run"]
