#!/usr/bin/env bash
# secrets.sh: every password and key of the stack, in place before anything starts.
#
# Run by the one-shot `setup` service as root. For each secret, in this order:
#   1. the value in the project's .env (mounted read-only at $DIDBAN_ENV_DIR), if set;
#   2. the value already in its volume (kept across restarts);
#   3. a new random value.
# Each secret is written to the volume of the containers that need it, and only there,
# readable by their user and group alone. Nothing is printed but names and how to read them, so the
# compose model (`docker compose config`), the images and every command line stay free of
# secrets. Alert channels (their URLs carry tokens) come from .env only: unset means off.
set -euo pipefail

ENV_FILE=${DIDBAN_ENV_DIR:-/didban/env}/.env
# Volume mount points (see docker-compose.yml) and the owners of their files.
SETUP_STATE=${SETUP_STATE_DIR:-/didban/state}
ELASTIC_DIR=${ELASTIC_SECRETS_DIR:-/didban/secrets/elastic}
KIBANA_DIR=${KIBANA_SECRETS_DIR:-/didban/secrets/kibana}
SHIPPER_DIR=${SHIPPER_SECRETS_DIR:-/didban/secrets/shipper}
HEARTBEAT_DIR=${HEARTBEAT_SECRETS_DIR:-/didban/secrets/heartbeat}
ELASTIC_OWNER=${ELASTIC_SECRETS_OWNER:-1000:0}     # Elasticsearch, Kibana and Beats images
SHIPPER_OWNER=${SHIPPER_SECRETS_OWNER:-10002:10002} # the shipper image's user

log() { echo "setup: $*"; }
fail() { echo "setup: $*" >&2; exit 1; }

# Values from .env: KEY=VALUE lines, optional quotes; never sourced (it is not a script).
declare -A from_env=()
if [ -f "$ENV_FILE" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    [[ $line =~ ^[[:space:]]*([A-Z_][A-Z0-9_]*)[[:space:]]*=(.*)$ ]] || continue
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    from_env[$key]=$value
  done <"$ENV_FILE"
  log "reading overrides from .env"
fi

random() { # random LENGTH: letters and digits from the kernel's CSPRNG
  local out=""
  while [ ${#out} -lt "$1" ]; do
    out+=$(head -c 256 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
  done
  printf '%s' "${out:0:$1}"
}

write_secret() { # write_secret FILE OWNER VALUE
  local tmp="$1.tmp"
  (umask 077 && printf '%s' "$3" >"$tmp")
  chown "$2" "$tmp"
  chmod 0440 "$tmp"
  mv -f "$tmp" "$1"
}

# secret NAME MIN_LENGTH FILE OWNER [FILE OWNER ...]: sets the variable NAME too.
secret() {
  local name=$1 min=$2 value="" source
  shift 2
  if [ -n "${from_env[$name]:-}" ]; then
    value=${from_env[$name]}
    source=".env"
  elif [ -s "$1" ]; then
    value=$(<"$1")
    source="kept"
  else
    value=$(random $((min > 32 ? min : 32)))
    source="generated"
  fi
  if [[ ! $value =~ ^[A-Za-z0-9]+$ ]] || [ ${#value} -lt "$min" ]; then
    fail "$name must be at least $min letters or digits (from $source)"
  fi
  while [ $# -ge 2 ]; do
    write_secret "$1" "$2" "$value"
    shift 2
  done
  printf -v "$name" '%s' "$value"
  log "$name: $source"
}

# optional NAME FILE OWNER: an alert channel; removed when .env does not set it.
optional() {
  if [ -n "${from_env[$1]:-}" ]; then
    write_secret "$2" "$3" "${from_env[$1]}"
    log "$1: .env"
  else
    rm -f "$2"
  fi
}

mkdir -p "$SETUP_STATE" "$ELASTIC_DIR" "$KIBANA_DIR" "$SHIPPER_DIR" "$HEARTBEAT_DIR"
chmod 0700 "$SETUP_STATE"
chmod 0755 "$ELASTIC_DIR" "$KIBANA_DIR" "$SHIPPER_DIR" "$HEARTBEAT_DIR"

# The elastic user's password is Elasticsearch's bootstrap password at the first start
# only; a later change in .env is applied by the setup step through the API with the
# previous one, kept here (a volume only setup mounts).
previous_elastic=""
[ -s "$ELASTIC_DIR/elastic_password" ] && previous_elastic=$(<"$ELASTIC_DIR/elastic_password")
secret ELASTIC_PASSWORD 12 "$ELASTIC_DIR/elastic_password" "$ELASTIC_OWNER"
if [ -n "$previous_elastic" ] && [ "$previous_elastic" != "$ELASTIC_PASSWORD" ]; then
  write_secret "$SETUP_STATE/elastic_password.previous" 0:0 "$previous_elastic"
fi
secret KIBANA_PASSWORD 12 "$KIBANA_DIR/kibana_password" "$ELASTIC_OWNER"
secret KIBANA_ENCRYPTION_KEY 32 "$KIBANA_DIR/encryption_key" "$ELASTIC_OWNER"
secret KIBANA_SESSION_KEY 32 "$KIBANA_DIR/session_key" "$ELASTIC_OWNER"
secret SHIPPER_ES_PASSWORD 12 "$SHIPPER_DIR/elasticsearch_password" "$SHIPPER_OWNER"
secret HEARTBEAT_ES_PASSWORD 12 "$HEARTBEAT_DIR/elasticsearch_password" "$ELASTIC_OWNER"
optional ALERT_TELEGRAM "$SHIPPER_DIR/alert_telegram" "$SHIPPER_OWNER"
optional ALERT_SLACK "$SHIPPER_DIR/alert_slack" "$SHIPPER_OWNER"
optional ALERT_EMAIL "$SHIPPER_DIR/alert_email" "$SHIPPER_OWNER"
optional ALERT_WEBHOOK "$SHIPPER_DIR/alert_webhook" "$SHIPPER_OWNER"

log "the elastic user's password (Kibana login): docker compose exec elasticsearch cat /didban/secrets/elastic/elastic_password"
