# Redis Commander from its npm package, set up as its own Dockerfile (shipped in the package)
# does on Alpine: its docker/entrypoint.sh turns REDIS_HOST, REDIS_PASSWORD_FILE, HTTP_USER
# and HTTP_PASSWORD into its config; the config directory is writable by group 0, so it runs
# as any uid with group 0. Debian's Node 18, as the release's dependencies predate Node 23
# (its `config` module calls util.isRegExp).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV HOME=/redis-commander NODE_ENV=production NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
WORKDIR /redis-commander
COPY redis-commander.tgz /tmp/
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates dumb-init jq nodejs npm \
 && rm -rf /var/lib/apt/lists/* \
 && tar -xzf /tmp/redis-commander.tgz -C /redis-commander --strip-components=1 \
 && rm /tmp/redis-commander.tgz \
 && npm install --omit=dev --no-audit --no-fund --loglevel=error \
 && npm cache clean --force \
 && chown -R root:root /redis-commander \
 && chown -R 1000:0 /redis-commander/config \
 && chmod g+w /redis-commander/config \
 && chmod ug+r,o-rwx /redis-commander/config/*.json
USER 1000
EXPOSE 8081
HEALTHCHECK --interval=1m --timeout=2s CMD ["/redis-commander/bin/healthcheck.js"]
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["/redis-commander/docker/entrypoint.sh"]
