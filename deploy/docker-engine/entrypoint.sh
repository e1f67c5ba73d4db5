#!/bin/sh
# Starts rootless dockerd as the user `rootless`, with its API on TCP port 2375.
#
# It starts as root only to make the container's own /dev/net/tun node usable by that user
# (hosts that keep theirs root-only, mode 0600, pass it on so; the host's node is not
# touched) and to lift Docker's masks on /proc and /sys, then drops to uid 1000 for good. RootlessKit maps uid 0 of the daemon's user
# namespace to that user and gives the namespace its own network (slirp4netns); its port
# driver forwards the API port and the ports of published containers to this container.
set -eu
if [ "$(id -u)" = 0 ]; then
  chmod 0666 /dev/net/tun
  # Docker masks parts of /proc and /sys with over-mounts and keeps /proc/sys read-only. The
  # kernel refuses a fresh proc or sysfs mount in a user namespace while such over-mounts
  # exist, and every container this engine runs needs one (the daemon also turns on IP
  # forwarding in its own namespace). `docker run --security-opt systempaths=unconfined`
  # leaves them out; compose cannot say so, hence the unmounts.
  awk '$5 ~ "^/(proc|sys)/" && $5 !~ "^/sys/fs/cgroup" { print $5 }' /proc/self/mountinfo | sort -r | while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done
  exec setpriv --reuid=rootless --regid=rootless --init-groups "$0" "$@"
fi
export HOME=/home/rootless XDG_RUNTIME_DIR=/run/user/1000
export DOCKERD_ROOTLESS_ROOTLESSKIT_FLAGS="-p 0.0.0.0:2375:2375/tcp"
exec /usr/share/docker.io/contrib/dockerd-rootless.sh --host=tcp://0.0.0.0:2375 --tls=false "$@"
