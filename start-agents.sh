#!/usr/bin/env bash
# Runs codegod on one machine with docker-compose.agents.yml.
#
#   ./start-agents.sh up                       # first run: creates secrets/, builds, starts
#   ./start-agents.sh build "Build a Flask + React todo app"
#   ./start-agents.sh status
#   COMPOSE_PROFILES=cpu ./start-agents.sh up  # Ollama on the CPU instead of vLLM on a GPU
#   COMPOSE_PROFILES=scripted ./start-agents.sh up   # no GPU, no model: the scripted LLM
#
# Works with the Compose v2 plugin (`docker compose`) or the standalone v1 `docker-compose`,
# never prompts without a terminal, and reads settings from the environment first, then
# from .env beside this script.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly COMPOSE_FILE_PATH="$SCRIPT_DIR/docker-compose.agents.yml"
readonly ENV_FILE="$SCRIPT_DIR/.env"
readonly SECRETS_DIR="$SCRIPT_DIR/secrets"
readonly ORCHESTRATOR=master-orchestrator
readonly AGENT_SERVICES=(backend-agent frontend-agent devops-agent testing-agent)
readonly ALL_SERVICES=(redis redis-commander vllm-server ollama scripted-llm docker-engine volume-init "$ORCHESTRATOR" "${AGENT_SERVICES[@]}")
readonly DEFAULT_VLLM_MODEL="Qwen/Qwen2.5-Coder-7B-Instruct"
readonly DEFAULT_OLLAMA_MODEL="qwen2.5-coder:7b"
readonly SCRIPTED_MODEL="codegod-test"
readonly DOCKER_ENGINE_HOST="tcp://docker-engine:2375"
# Container uid:gid when this script runs as root (non-root callers use their own).
readonly DEFAULT_CONTAINER_ID=10001

USAGE="usage: start-agents.sh up [--no-build] | down | restart [svc] | logs [svc] | status | wipe [--yes] | scale <svc> <n> | exec <svc> [cmd...] | pull-model [model] | build \"goal\" [--detach] | backup [file] | restore <file> | doctor | help"

help_text() {
  cat <<EOF
$USAGE

  up [--no-build]       create missing secrets, build the image, start every service
                        (--no-build: use the images already there, e.g. pulled or loaded)
  down                  stop and remove the containers (volumes and secrets are kept)
  restart [svc]         restart every service, or one
  logs [svc]            follow the logs of every service, or one
  status                containers, queue depth per role, agents and builds in flight
  wipe [--yes]          wipe every agent's working memory (codegod wipe --all --yes);
                        asks first on a terminal, needs --yes otherwise
  scale <svc> <n>       run n replicas of an agent service (${AGENT_SERVICES[*]})
  exec <svc> [cmd...]   run a command in a service's container (default: sh)
  pull-model [model]    download the model into the LLM server's cache
  build "goal" [--detach]
                        run a build through the orchestrator and follow its progress
  backup [file]         Redis (a consistent snapshot: builds, history, queues, agent
                        memory) and every workspace into one archive (default
                        codegod-backup-<date>.tar.gz here)
  restore <file>        bring a backup back into an empty stack (up, nothing built yet)
  doctor                check the prerequisites and the running deployment
  help                  this text

The LLM server is vLLM on an NVIDIA GPU (COMPOSE_PROFILES=gpu, the default), Ollama on
the CPU (COMPOSE_PROFILES=cpu) or the scripted server that answers the todo-app scenario
without a model (COMPOSE_PROFILES=scripted); add the profile docker (e.g. gpu,docker) for the
devops agent's isolated Docker engine. Set them in the environment or in .env.
EOF
}

die() {
  echo "start-agents: $*" >&2
  exit 1
}

usage_error() {
  echo "start-agents: $*" >&2
  echo "$USAGE" >&2
  exit 2
}

contains() {
  local needle=$1 item
  shift
  for item in "$@"; do
    [[ $item == "$needle" ]] && return 0
  done
  return 1
}

# The value of NAME from .env (last assignment wins, surrounding quotes removed).
dotenv_value() {
  local name=$1 line value="" found=1
  [[ -f $ENV_FILE ]] || return 1
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?${name}=(.*)$ ]]; then
      value=${BASH_REMATCH[2]}
      value=${value%$'\r'}
      if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
        value=${BASH_REMATCH[1]}
      fi
      found=0
    fi
  done <"$ENV_FILE"
  [[ $found -eq 0 ]] || return 1
  printf '%s' "$value"
}

# A setting: the environment wins over .env, as with docker compose itself.
setting() {
  local name=$1
  if [[ -n ${!name:-} ]]; then
    printf '%s' "${!name}"
  else
    dotenv_value "$name" || true
  fi
}

setting_or() {
  local value
  value=$(setting "$1")
  printf '%s' "${value:-$2}"
}

# ---------------------------------------------------------------------------------------
# Arguments (validated before anything touches Docker)
# ---------------------------------------------------------------------------------------

COMMAND=${1:-}
[[ -n $COMMAND ]] || usage_error "missing command"
shift

ARGS=("$@")
WIPE_CONFIRMED=0
NO_BUILD=0
case $COMMAND in
  help | -h | --help)
    [[ ${#ARGS[@]} -eq 0 ]] || usage_error "help takes no arguments"
    help_text
    exit 0
    ;;
  up)
    for arg in "${ARGS[@]}"; do
      [[ $arg == --no-build ]] || usage_error "up takes only --no-build"
      NO_BUILD=1
    done
    ;;
  down | status | doctor)
    [[ ${#ARGS[@]} -eq 0 ]] || usage_error "$COMMAND takes no arguments"
    ;;
  restart | logs)
    [[ ${#ARGS[@]} -le 1 ]] || usage_error "$COMMAND takes at most one service"
    if [[ ${#ARGS[@]} -eq 1 ]]; then
      contains "${ARGS[0]}" "${ALL_SERVICES[@]}" || usage_error "unknown service '${ARGS[0]}' (one of: ${ALL_SERVICES[*]})"
    fi
    ;;
  wipe)
    for arg in "${ARGS[@]}"; do
      [[ $arg == --yes || $arg == -y ]] || usage_error "wipe takes only --yes"
      WIPE_CONFIRMED=1
    done
    if [[ $WIPE_CONFIRMED -eq 0 && ! -t 0 ]]; then
      usage_error "wipe erases every agent's working memory and needs confirmation: run it on a terminal or pass --yes"
    fi
    ;;
  scale)
    [[ ${#ARGS[@]} -eq 2 ]] || usage_error "scale needs a service and a replica count"
    contains "${ARGS[0]}" "${AGENT_SERVICES[@]}" || usage_error "cannot scale '${ARGS[0]}': only agent services scale (${AGENT_SERVICES[*]})"
    [[ ${ARGS[1]} =~ ^[0-9]+$ ]] || usage_error "replica count must be a non-negative integer, got '${ARGS[1]}'"
    ARGS[1]=$((10#${ARGS[1]}))
    ;;
  exec)
    [[ ${#ARGS[@]} -ge 1 ]] || usage_error "exec needs a service"
    contains "${ARGS[0]}" "${ALL_SERVICES[@]}" || usage_error "unknown service '${ARGS[0]}' (one of: ${ALL_SERVICES[*]})"
    ;;
  pull-model)
    [[ ${#ARGS[@]} -le 1 ]] || usage_error "pull-model takes at most one model name"
    if [[ ${#ARGS[@]} -eq 1 && -z ${ARGS[0]} ]]; then
      usage_error "model name is empty"
    fi
    ;;
  build)
    [[ ${#ARGS[@]} -ge 1 ]] || usage_error "build needs a goal, e.g. ./start-agents.sh build \"Create a Flask todo app\""
    [[ -n ${ARGS[0]//[[:space:]]/} ]] || usage_error "the goal is empty"
    [[ ${ARGS[0]} != -* ]] || usage_error "the goal comes first, then --detach"
    for arg in "${ARGS[@]:1}"; do
      [[ $arg == --detach ]] || usage_error "build takes only --detach after the goal, got '$arg'"
    done
    ;;
  backup)
    [[ ${#ARGS[@]} -le 1 ]] || usage_error "backup takes at most one file"
    BACKUP_FILE=${ARGS[0]:-codegod-backup-$(date -u +%Y%m%dT%H%M%SZ).tar.gz}
    [[ -n $BACKUP_FILE && $BACKUP_FILE != -* ]] || usage_error "backup needs a file name, got '$BACKUP_FILE'"
    [[ ! -d $BACKUP_FILE ]] || usage_error "cannot write the backup to $BACKUP_FILE: it is a directory; give a file name"
    # Checked before Docker is touched: an unwritable target changes nothing.
    BACKUP_PARTIAL="$BACKUP_FILE.partial"
    if ! (umask 077 && : >"$BACKUP_PARTIAL") 2>/dev/null; then
      echo "start-agents: cannot write the backup to $BACKUP_FILE (its directory is missing or not writable)" >&2
      exit 2
    fi
    # Whatever ends this script early, no half archive stays behind.
    trap 'rm -f "$BACKUP_PARTIAL"' EXIT
    ;;
  restore)
    [[ ${#ARGS[@]} -eq 1 ]] || usage_error "restore needs the archive, e.g. ./start-agents.sh restore codegod-backup.tar.gz"
    [[ -f ${ARGS[0]} && -r ${ARGS[0]} ]] || {
      echo "start-agents: cannot read the backup ${ARGS[0]} (no such file, or not readable)" >&2
      exit 2
    }
    ;;
  *)
    usage_error "unknown command '$COMMAND'"
    ;;
esac

# ---------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------

DOCKER_INFO=""
check_engine() {
  command -v docker >/dev/null 2>&1 ||
    die "the docker CLI is not installed; install Docker Engine (https://docs.docker.com/engine/install/)"
  local err
  err=$(mktemp)
  if ! DOCKER_INFO=$(docker info 2>"$err"); then
    local reason
    reason=$(grep -v '^[[:space:]]*$' "$err" | tail -n 1 || true)
    rm -f "$err"
    die "cannot reach the Docker engine (${reason:-docker info failed}); start Docker (e.g. 'sudo systemctl start docker') or check DOCKER_HOST and your access to its socket"
  fi
  rm -f "$err"
}

COMPOSE=()
detect_compose() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
    # v1 passes security options to the engine as they are, and the engine does not know
    # systempaths=unconfined (only the docker CLI and Compose v2 turn it into unmasked /proc
    # paths): the role agents' commands then get /proc hidden instead of a fresh one. The
    # stand-in repeats no-new-privileges:true, spelled apart: v1 refuses duplicate entries.
    if [[ -z $(setting CODEGOD_AGENT_PROC_OPT) ]]; then
      export CODEGOD_AGENT_PROC_OPT=no-new-privileges
    fi
  else
    die "Docker Compose is not installed; install the compose plugin ('docker compose', https://docs.docker.com/compose/install/) or docker-compose"
  fi
}

# gpu: vLLM; cpu: Ollama; scripted: the scripted server; external: none of them
# (VLLM_API_URL points elsewhere). The docker profile adds the devops agent's engine.
LLM_MODE=gpu
DOCKER_ENGINE=0
select_profiles() {
  local profiles item
  local -a items llm=()
  profiles=$(setting COMPOSE_PROFILES)
  IFS=',' read -r -a items <<<"$profiles"
  for item in "${items[@]}"; do
    item=${item//[[:space:]]/}
    case $item in
      gpu | cpu | scripted) llm+=("$item") ;;
      docker) DOCKER_ENGINE=1 ;;
    esac
  done
  if [[ ${#llm[@]} -gt 1 ]]; then
    die "COMPOSE_PROFILES='$profiles' selects several LLM servers (${llm[*]}); pick one of gpu, cpu, scripted"
  elif [[ ${#llm[@]} -eq 1 ]]; then
    LLM_MODE=${llm[0]}
  elif [[ -z ${profiles//[[:space:]]/} ]]; then
    LLM_MODE=gpu
    profiles=gpu
  else
    LLM_MODE=external
  fi
  export COMPOSE_PROFILES=$profiles

  case $LLM_MODE in
    cpu)
      [[ -n $(setting VLLM_API_URL) ]] || export VLLM_API_URL="http://ollama:11434/v1"
      [[ -n $(setting LLM_MODEL) ]] || export LLM_MODEL="$DEFAULT_OLLAMA_MODEL"
      ;;
    scripted)
      [[ -n $(setting VLLM_API_URL) ]] || export VLLM_API_URL="http://scripted-llm:8000/v1"
      [[ -n $(setting LLM_MODEL) ]] || export LLM_MODEL="$SCRIPTED_MODEL"
      ;;
  esac
  if [[ $DOCKER_ENGINE -eq 1 && -z $(setting CODEGOD_DOCKER_HOST) ]]; then
    export CODEGOD_DOCKER_HOST="$DOCKER_ENGINE_HOST"
  fi
}

check_gpu() {
  [[ $LLM_MODE == gpu ]] || return 0
  [[ $(setting CODEGOD_SKIP_GPU_CHECK) == 1 ]] && return 0
  if ! grep -Eiq '^[[:space:]]*Runtimes:.*nvidia' <<<"$DOCKER_INFO"; then
    die "vLLM needs an NVIDIA GPU but 'docker info' lists no nvidia runtime; install the NVIDIA Container Toolkit and run 'sudo nvidia-ctk runtime configure --runtime=docker', or use Ollama on the CPU: COMPOSE_PROFILES=cpu ./start-agents.sh $COMMAND"
  fi
}

CONTAINER_UID=""
CONTAINER_GID=""
select_container_ids() {
  CONTAINER_UID=$(setting CODEGOD_UID)
  CONTAINER_GID=$(setting CODEGOD_GID)
  if [[ -z $CONTAINER_UID ]]; then
    if [[ $EUID -eq 0 ]]; then CONTAINER_UID=$DEFAULT_CONTAINER_ID; else CONTAINER_UID=$(id -u); fi
  fi
  if [[ -z $CONTAINER_GID ]]; then
    if [[ $EUID -eq 0 ]]; then CONTAINER_GID=$DEFAULT_CONTAINER_ID; else CONTAINER_GID=$(id -g); fi
  fi
  [[ $CONTAINER_UID =~ ^[0-9]+$ && $CONTAINER_GID =~ ^[0-9]+$ ]] ||
    die "CODEGOD_UID and CODEGOD_GID must be numeric, got '$CONTAINER_UID:$CONTAINER_GID'"
  [[ $CONTAINER_UID -ne 0 ]] || die "CODEGOD_UID=0 would run codegod as root; pick a non-root uid"
  export CODEGOD_UID=$CONTAINER_UID CODEGOD_GID=$CONTAINER_GID
}

random_secret() {
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

# Secret files are created once, mode 0600, and owned by the uid the containers run as
# (compose bind-mounts them unchanged; it cannot remap owners outside Swarm).
ensure_secrets() {
  local created=()
  if [[ ! -d $SECRETS_DIR ]]; then
    mkdir -m 0700 "$SECRETS_DIR" 2>/dev/null ||
      die "cannot create $SECRETS_DIR for the secrets; run from a writable checkout, or create it (mode 0700) with the files of docs/DEPLOYMENT.md"
  fi
  chmod 0700 "$SECRETS_DIR"
  local name
  for name in redis_password llm_api_key redis_commander_password api_token hf_token; do
    local file="$SECRETS_DIR/$name"
    if [[ -e $file || -L $file ]]; then
      [[ -f $file ]] || die "$file is not a regular file; replace it with a file holding the secret, or remove it so that a new one is generated"
      continue
    fi
    (
      umask 077
      if [[ $name == hf_token ]]; then
        : >"$file"
      else
        random_secret >"$file"
      fi
    ) 2>/dev/null || die "cannot write $file; make $SECRETS_DIR writable or create the file yourself (mode 0600)"
    created+=("$name")
  done
  # An empty password would start Redis (or the dashboard, or Redis Commander) without one.
  local required=(redis_password api_token)
  [[ -n $(setting REDIS_COMMANDER_PASSWORD) ]] || required+=(redis_commander_password)
  for name in "${required[@]}"; do
    [[ -n $(tr -d '[:space:]' <"$SECRETS_DIR/$name" 2>/dev/null) ]] ||
      die "$SECRETS_DIR/$name is empty; write the secret into it, or delete it so that a new one is generated"
  done
  chmod 0600 "$SECRETS_DIR"/* 2>/dev/null ||
    die "cannot set mode 0600 on the files in $SECRETS_DIR: they belong to another user; run this script as that user or as root"
  if [[ $EUID -eq 0 ]]; then
    chown -R "$CONTAINER_UID:$CONTAINER_GID" "$SECRETS_DIR"
  fi
  if [[ ${#created[@]} -gt 0 ]]; then
    echo "start-agents: created ${created[*]} in $SECRETS_DIR (mode 0600)" >&2
  fi
  if [[ -z $(setting REDIS_COMMANDER_PASSWORD) ]]; then
    REDIS_COMMANDER_PASSWORD=$(<"$SECRETS_DIR/redis_commander_password")
    export REDIS_COMMANDER_PASSWORD
  fi
}

compose() {
  (cd "$SCRIPT_DIR" && "${COMPOSE[@]}" -f "$COMPOSE_FILE_PATH" -p "$PROJECT_NAME" "$@")
}

# -T (no pseudo-terminal) unless both ends are terminals: compose v1 allocates one by default.
tty_flag() {
  if [[ -t 0 && -t 1 ]]; then
    return 0
  fi
  printf '%s' "-T"
}

# The CLI runs inside the orchestrator's container (it has the Redis password file); its
# exit code becomes this script's.
in_orchestrator() {
  local flag
  flag=$(tty_flag)
  compose exec ${flag:+"$flag"} "$ORCHESTRATOR" codegod "$@"
}

check_engine
detect_compose
select_profiles
select_container_ids
PROJECT_NAME=$(setting COMPOSE_PROJECT_NAME)
PROJECT_NAME=${PROJECT_NAME:-codegod}
readonly PROJECT_NAME
case $COMMAND in
  up | doctor | pull-model) check_gpu ;;
esac
ensure_secrets

# A published port that something else holds would stop `up` halfway; ours (the project's own
# running container) is fine.
check_port() {
  local service=$1 container_port=$2 variable=$3 default=$4 port
  port=$(setting_or "$variable" "$default")
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
  [[ $(compose port "$service" "$container_port" 2>/dev/null) == "127.0.0.1:$port" ]] && return 0
  die "port $port on 127.0.0.1 is taken (the $service port, $variable); stop what listens there or set $variable to a free port in .env"
}

# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------

case $COMMAND in
  up)
    check_port "$ORCHESTRATOR" 8080 CODEGOD_DASHBOARD_PORT 8080
    check_port redis-commander 8081 REDIS_COMMANDER_PORT 8081
    if [[ $NO_BUILD -eq 0 ]]; then
      compose build || die "building the images failed (the output above says why); nothing was started"
    fi
    if ! compose up -d --no-build; then
      compose down >/dev/null 2>&1 || true
      die "up failed (the output above says why); the containers it had started were removed (volumes and secrets are kept): fix the cause and run up again"
    fi
    echo "codegod is starting (LLM: $LLM_MODE$([[ $DOCKER_ENGINE -eq 1 ]] && echo ', with the devops agent'"'"'s Docker engine'))."
    if [[ ${COMPOSE[0]} == docker-compose && $(setting CODEGOD_AGENT_PROC_OPT) == no-new-privileges \
          && $(setting CODEGOD_SANDBOX) != host && $(setting CODEGOD_SANDBOX_NETWORK) != off ]]; then
      echo "start-agents: warning: docker-compose v1 leaves the agents' /proc masked, where their commands' isolated network cannot start: agents refuse commands until you set CODEGOD_SANDBOX_NETWORK=off (no network for commands) or use Compose v2 ('docker compose')" >&2
    fi
    echo "  dashboard:       http://127.0.0.1:$(setting_or CODEGOD_DASHBOARD_PORT 8080) (API token in $SECRETS_DIR/api_token: open the dashboard once with ?token=<it>)"
    echo "  redis commander: http://127.0.0.1:$(setting_or REDIS_COMMANDER_PORT 8081) (user $(setting_or REDIS_COMMANDER_USER admin), password in $SECRETS_DIR/redis_commander_password unless REDIS_COMMANDER_PASSWORD is set)"
    if [[ $LLM_MODE == gpu ]]; then
      echo "  vLLM downloads and loads the model on its first start (minutes); start builds once './start-agents.sh status' shows vllm-server healthy."
    elif [[ $LLM_MODE == cpu ]]; then
      echo "  pull the model once: COMPOSE_PROFILES=cpu ./start-agents.sh pull-model"
    elif [[ $LLM_MODE == scripted ]]; then
      echo "  the scripted LLM answers one goal: ./start-agents.sh build \"Create a Flask + React todo app\""
    fi
    echo "  then: ./start-agents.sh build \"your goal\""
    ;;
  down)
    compose down
    ;;
  restart)
    compose restart "${ARGS[@]}"
    ;;
  logs)
    compose logs -f --tail=200 "${ARGS[@]}"
    ;;
  status)
    compose ps
    echo
    in_orchestrator status
    ;;
  wipe)
    if [[ $WIPE_CONFIRMED -eq 0 ]]; then
      read -r -p "Wipe every agent's working memory (current task, completed tasks, observations, reasoning)? Role and core knowledge are kept. [y/N] " answer
      [[ $answer =~ ^[Yy]([Ee][Ss])?$ ]] || die "wipe cancelled"
    fi
    in_orchestrator wipe --all --yes
    ;;
  scale)
    compose up -d --no-deps --scale "${ARGS[0]}=${ARGS[1]}" "${ARGS[0]}"
    ;;
  exec)
    flag=$(tty_flag)
    if [[ ${#ARGS[@]} -eq 1 ]]; then
      compose exec ${flag:+"$flag"} "${ARGS[0]}" sh
    else
      compose exec ${flag:+"$flag"} "${ARGS[@]}"
    fi
    ;;
  pull-model)
    model=${ARGS[0]:-$(setting LLM_MODEL)}
    case $LLM_MODE in
      gpu)
        model=${model:-$DEFAULT_VLLM_MODEL}
        echo "start-agents: downloading $model into the Hugging Face cache volume"
        compose run --rm --no-deps -e HF_HUB_OFFLINE=0 --entrypoint python3 vllm-server \
          -c 'import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1]))' "$model"
        ;;
      cpu)
        model=${model:-$DEFAULT_OLLAMA_MODEL}
        echo "start-agents: pulling $model into Ollama"
        compose up -d ollama
        compose exec -T ollama ollama pull "$model"
        ;;
      external | scripted)
        die "no model to pull (COMPOSE_PROFILES=$COMPOSE_PROFILES): the scripted LLM needs none, and an external server keeps its own"
        ;;
    esac
    ;;
  build)
    in_orchestrator build "${ARGS[@]}"
    ;;
  backup)
    # The CLI runs in the orchestrator's container (Redis password, workspace volume) and
    # streams the archive out; it lands under its name only once complete.
    compose exec -T "$ORCHESTRATOR" codegod backup - >"$BACKUP_PARTIAL"
    mv -f "$BACKUP_PARTIAL" "$BACKUP_FILE"
    echo "start-agents: backup written to $BACKUP_FILE"
    ;;
  restore)
    compose exec -T "$ORCHESTRATOR" codegod restore - <"${ARGS[0]}"
    ;;
  doctor)
    echo "ok: Docker engine reachable ($(grep -E '^[[:space:]]*Server Version:' <<<"$DOCKER_INFO" | sed 's/^[[:space:]]*//' || echo 'version unknown'))"
    echo "ok: compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version 2>/dev/null | head -n 1 || true))"
    case $LLM_MODE in
      gpu) echo "ok: LLM: vLLM on the GPU (nvidia runtime present)" ;;
      cpu) echo "ok: LLM: Ollama on the CPU" ;;
      scripted) echo "ok: LLM: the scripted server (todo-app scenario, no model)" ;;
      external) echo "ok: LLM: external endpoint $(setting VLLM_API_URL)" ;;
    esac
    echo "ok: containers run as uid:gid $CONTAINER_UID:$CONTAINER_GID; secrets in $SECRETS_DIR"
    compose ps
    echo
    in_orchestrator doctor
    ;;
esac
