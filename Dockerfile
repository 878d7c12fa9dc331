# Images of the shop: one per service (targets order, payment, inventory) and
# a tools image (target tools: the one-shot SPIRE set-up steps of
# compose.yaml). The order image also runs the traffic generator. They share every layer but the last, so the
# four together cost about one.
#
#   docker build --target payment -t spiffe-shop/payment:dev .
#
# NODE_IMAGE is the base: the official Node 24 slim image by default; this
# repository's air-gapped machines pass a local stand-in (scripts/containers).
# Works with BuildKit and with the classic builder.
ARG NODE_IMAGE=node:24-slim
ARG SPIRE_SERVER_IMAGE=ghcr.io/spiffe/spire-server:1.15.2

# Production dependencies only, resolved from the lockfile. Only the manifests
# are copied first, so a source change does not reinstall them.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY libs/auth/package.json libs/auth/
COPY libs/auth-testing/package.json libs/auth-testing/
COPY libs/service-kit/package.json libs/service-kit/
COPY libs/contracts/package.json libs/contracts/
COPY tools/spiffe-auth/package.json tools/spiffe-auth/
COPY tools/console/package.json tools/console/
COPY services/order/package.json services/order/
COPY services/payment/package.json services/payment/
COPY services/inventory/package.json services/inventory/
COPY bench/package.json bench/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
      --workspace libs/auth --workspace libs/service-kit --workspace libs/contracts --workspace tools/spiffe-auth \
      --workspace tools/console \
      --workspace services/order --workspace services/payment --workspace services/inventory \
      --include-workspace-root \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    LOG_LEVEL=info
WORKDIR /app
COPY --from=deps /app /app
# Sources run as they are: Node 24 strips the TypeScript types itself.
# tools/ holds the spiffe-auth CLI (compose's certificate steps run it).
COPY libs libs
COPY tools tools
COPY services services
COPY scripts scripts
COPY spire spire
# Each service keeps its SQLite data under /data/<service>; compose mounts a
# named volume there, which inherits this ownership (as does /certs, where
# compose.static.yaml's certificate step writes, and /trust of compose.migrate.yaml).
RUN mkdir -p /data/order /data/payment /data/inventory /certs /trust && chown -R node:node /data /certs /trust
USER node
# The ops port answers /health/ready with 200 once the service has its identity and
# its store; OPS_PORT is set per service below.
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.OPS_PORT}/health/ready`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

FROM runtime AS inventory
ENV SERVICE=inventory PORT=8444 GRPC_PORT=50051 OPS_PORT=9444 DATA_DIR=/data/inventory
EXPOSE 8444 50051 9444
CMD ["node", "services/inventory/src/server.ts"]

FROM runtime AS payment
ENV SERVICE=payment PORT=8443 OPS_PORT=9443 ADMIN_PORT=9543 DATA_DIR=/data/payment
EXPOSE 8443 9443 9543
CMD ["node", "services/payment/src/server.ts"]

FROM runtime AS order
ENV SERVICE=order PORT=8080 OPS_PORT=9080 DATA_DIR=/data/order
EXPOSE 8080 9080
CMD ["node", "services/order/src/server.ts"]

# The console (tools/console): the live page, reading the services' ops ports
# and receiving their spans (OTLP/HTTP JSON) on the same port.
FROM runtime AS console
ENV SERVICE=console PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/api/model`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "tools/console/src/server.ts"]

# The tools image adds the spire-server CLI (SPIRE's images have no shell, so
# compose's registration step runs from here). Last in the file: the classic
# builder builds every stage before the target, and no service image should
# need the SPIRE image.
FROM ${SPIRE_SERVER_IMAGE} AS spire-server
FROM runtime AS tools
COPY --from=spire-server /opt/spire/bin/spire-server /usr/local/bin/spire-server
# Mount points of compose's set-up volumes: a fresh named volume takes this
# ownership, so the one-shot steps can write there without root.
USER root
RUN mkdir -p /etc/spire/node-pki /etc/spire/bootstrap && chown node:node /etc/spire/node-pki /etc/spire/bootstrap
USER node
HEALTHCHECK NONE
CMD ["spire-server", "--version"]
