#!/bin/sh
# `docker compose` for a docker CLI without the Compose v2 plugin (Debian 12 packages none):
# installed as the CLI plugin docker-compose, it hands the command to docker-compose v1 with
# the endpoint the CLI was given (`docker -H tcp://engine:2375 compose -f f.yml up -d`).
set -eu
if [ "${1:-}" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"codegod","Version":"1.29","ShortDescription":"Docker Compose through docker-compose v1"}'
  exit 0
fi
# The CLI passes its own arguments on: its global options, `compose`, then compose's.
while [ "$#" -gt 0 ]; do
  case $1 in
    compose) shift; break ;;
    -H | --host) export DOCKER_HOST="$2"; shift 2 ;;
    --host=*) export DOCKER_HOST="${1#--host=}"; shift ;;
    -H*) export DOCKER_HOST="${1#-H}"; shift ;;
    *) shift ;;
  esac
done
exec docker-compose "$@"
