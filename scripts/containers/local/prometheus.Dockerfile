# Stand-in for the official prom/prometheus image, for machines that cannot
# pull it: Debian's prometheus package on the local Debian image
# (DEBIAN_IMAGE, from scripts/containers/local-images.ts), laid out as the
# official image is where compose.yaml relies on it: the configuration in
# /etc/prometheus, the data in /prometheus, port 9090, a non-root user.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus \
 && chown prometheus:prometheus /prometheus
USER prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
