# codegod: one image for the orchestrator and every role worker.
#
#   docker build -t codegod:local .
#   docker run --rm codegod:local codegod --help
#
# Stage 1 compiles TypeScript with the full dev toolchain; stage 2 holds only production
# dependencies, the compiled dist/ and the toolchains the agents drive inside the shared
# workspace (python3 + venv + pip, git, node + npm, and the docker and compose clients the
# devops agent uses against its own isolated engine).
#
# NODE_IMAGE is the base of every stage: the official Node image unless you pass another
# Debian 12 based image with Node and npm (`--build-arg NODE_IMAGE=...`), e.g. a mirror of it.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts are opt-in: package.json's `allowScripts` records which dependencies may
# run theirs. Installing with --ignore-scripts and rebuilding only the approved ones keeps
# that decision binding whatever npm version the base image ships.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && approved="$(node -p "Object.entries(require('./package.json').allowScripts ?? {}).filter(([, ok]) => ok === true).map(([name]) => name).join(' ')")" \
 && if [ -n "$approved" ]; then npm rebuild $approved; fi
COPY . .
RUN npm run build

# Debian's docker CLI on its own: the docker.io package also holds the daemon, containerd and
# runc, which the image has no use for.
FROM ${NODE_IMAGE} AS docker-cli
WORKDIR /tmp/docker-cli
RUN apt-get update \
 && apt-get download docker.io \
 && dpkg-deb --fsys-tarfile docker.io_*.deb | tar -x ./usr/bin/docker \
 && rm -rf /var/lib/apt/lists/*

FROM ${NODE_IMAGE} AS runtime
# tini is PID 1: it forwards SIGTERM to node (so BullMQ workers drain their active jobs) and
# reaps the zombies that agent commands leave behind. docker-compose (v1) serves `docker
# compose` through the CLI plugin below: Debian 12 packages no Compose v2. bubblewrap and
# passt (pasta) are the agent sandbox: every command and file action of a task runs in its
# own user, mount, pid and network namespaces (docs/DEPLOYMENT.md, "Agent isolation in
# containers"). Neither is setuid here: they need the agent's seccomp profile, not privileges.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      tini ca-certificates git python3 python3-venv python3-pip docker-compose bubblewrap passt \
 && rm -rf /var/lib/apt/lists/*
COPY --from=docker-cli /tmp/docker-cli/usr/bin/docker /usr/local/bin/docker
COPY scripts/docker/compose-plugin.sh /usr/local/lib/docker/cli-plugins/docker-compose

# A fixed non-root identity; compose and Kubernetes may run the container as another
# non-root uid (CODEGOD_UID / runAsUser), so nothing below depends on this user's name.
RUN groupadd --gid 10001 codegod \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin codegod \
 && mkdir -p /workspace \
 && chown 10001:10001 /workspace

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && approved="$(node -p "Object.entries(require('./package.json').allowScripts ?? {}).filter(([, ok]) => ok === true).map(([name]) => name).filter((name) => require('node:fs').existsSync('node_modules/' + name)).join(' ')")" \
 && if [ -n "$approved" ]; then npm rebuild $approved; fi \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
# The scripted LLM's scenarios (dist/ holds only compiled code): `codegod demo` and the
# `scripted` compose profile read them.
COPY --from=build /app/scripts/llm-server/scenarios ./scripts/llm-server/scenarios
RUN printf '#!/bin/sh\nexec node /app/bin/codegod.js "$@"\n' > /usr/local/bin/codegod \
 && chmod 0755 /usr/local/bin/codegod

# The root filesystem is read-only at run time: HOME, caches and the health file live on the
# /tmp tmpfs (emptyDir in Kubernetes), builds in the /workspace volume.
# A small young generation keeps an idle worker under its 100 MB budget (V8 grows it to
# 16 MB per semi-space by default); agents spend their time waiting on the LLM, not in GC.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=2 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    npm_config_cache=/tmp/.npm \
    npm_config_update_notifier=false \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CODEGOD_WORKSPACE_ROOT=/workspace \
    CODEGOD_HEALTH_FILE=/tmp/codegod-health

USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/dist/scripts/healthcheck.js"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["codegod", "orchestrator"]
