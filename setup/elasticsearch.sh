#!/usr/bin/env bash
# elasticsearch.sh: certificates, then the users, roles, templates and lifecycle policies
# of the stack, with the elastic superuser. Run by the one-shot `setup` service (the
# Elasticsearch image, as root) after secrets.sh; idempotent, run at every `up`.
#
# Where things go (each a volume, see docker-compose.yml):
#   /didban/state       the CA and its private key: mounted by setup alone
#   /didban/es-certs    the node's certificate and key, the CA certificate: setup and
#                       Elasticsearch
#   /didban/ca          the CA certificate alone: every client of Elasticsearch
# Passwords are sent in request bodies read from stdin and credentials in a curl config
# file, never on a command line.
set -euo pipefail

STATE=/didban/state
ES_CERTS=/didban/es-certs
PUBLIC_CA=/didban/ca
SECRETS=/didban/secrets
TEMPLATES=/didban/templates
READY=$STATE/ready
ES=https://elasticsearch:9200
cd /usr/share/elasticsearch

log() { echo "setup: $*"; }
rm -f "$READY"

# ---- certificates ------------------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -s "$STATE/ca/ca.key" ]; then
  log "creating the certificate authority"
  bin/elasticsearch-certutil ca --silent --pem -out "$work/ca.zip"
  mkdir -p "$STATE/ca"
  unzip -q -o "$work/ca.zip" -d "$work"
  mv -f "$work/ca/ca.crt" "$work/ca/ca.key" "$STATE/ca/"
fi
if [ ! -s "$ES_CERTS/elasticsearch/elasticsearch.crt" ]; then
  log "creating the node certificate"
  printf '%s\n' 'instances:' '  - name: elasticsearch' '    dns: [elasticsearch, localhost]' \
    '    ip: [127.0.0.1]' >"$work/instances.yml"
  bin/elasticsearch-certutil cert --silent --pem -out "$work/certs.zip" --in "$work/instances.yml" \
    --ca-cert "$STATE/ca/ca.crt" --ca-key "$STATE/ca/ca.key"
  unzip -q -o "$work/certs.zip" -d "$work"
  mkdir -p "$ES_CERTS/elasticsearch"
  mv -f "$work/elasticsearch/elasticsearch.crt" "$work/elasticsearch/elasticsearch.key" "$ES_CERTS/elasticsearch/"
fi
mkdir -p "$ES_CERTS/ca"
cp -f "$STATE/ca/ca.crt" "$ES_CERTS/ca/ca.crt"
cp -f "$STATE/ca/ca.crt" "$PUBLIC_CA/ca.crt"
# The CA key: root only. The node key: root and group 0 (Elasticsearch runs as 1000:0).
chown -R root:root "$STATE" "$ES_CERTS" "$PUBLIC_CA"
chmod 0700 "$STATE" "$STATE/ca"
chmod 0600 "$STATE/ca/ca.key"
find "$ES_CERTS" -type d -exec chmod 0750 {} +
chgrp -R 0 "$ES_CERTS"
chmod 0640 "$ES_CERTS/elasticsearch/elasticsearch.key"
chmod 0644 "$ES_CERTS/elasticsearch/elasticsearch.crt" "$ES_CERTS/ca/ca.crt" "$PUBLIC_CA/ca.crt"
chmod 0755 "$ES_CERTS" "$PUBLIC_CA"
touch "$READY" # Elasticsearch may start (setup's health check)

# ---- calls to Elasticsearch --------------------------------------------------------------
elastic_password=$(<"$SECRETS/elastic/elastic_password")
auth_file() { # auth_file PASSWORD: a curl config with the elastic user's credentials
  local f="$work/auth.$RANDOM"
  (umask 077 && printf 'user = "elastic:%s"\n' "$1" >"$f")
  printf '%s' "$f"
}
AUTH=$(auth_file "$elastic_password")

# es METHOD PATH [BODY_FILE]: the body from a file, or from stdin with `-`. On failure,
# prints Elasticsearch's answer.
es() {
  local answer
  local args=(-sS --fail-with-body --cacert "$PUBLIC_CA/ca.crt" -K "${ES_AUTH:-$AUTH}"
    -H 'Content-Type: application/json' -X "$1" "$ES$2")
  [ $# -lt 3 ] || args+=(--data-binary "@$3")
  if answer=$(curl "${args[@]}" 2>&1); then
    return 0
  fi
  echo "setup: $1 $2 failed: $answer" >&2
  return 1
}

log "waiting for Elasticsearch"
until curl -s --cacert "$PUBLIC_CA/ca.crt" "$ES" | grep -q "missing authentication credentials"; do
  sleep 5
done

# A changed ELASTIC_PASSWORD in .env: change it with the previous one.
if ! es GET /_security/_authenticate 2>/dev/null && [ -s "$STATE/elastic_password.previous" ]; then
  log "changing the elastic user's password to the one of .env"
  printf '{"password":"%s"}' "$elastic_password" |
    ES_AUTH=$(auth_file "$(<"$STATE/elastic_password.previous")") es POST /_security/user/elastic/_password -
fi
es GET /_security/_authenticate || { echo "setup: the elastic user's password is not the one in the elastic secrets volume" >&2; exit 1; }
rm -f "$STATE/elastic_password.previous"

log "kibana_system password"
until printf '{"password":"%s"}' "$(<"$SECRETS/kibana/kibana_password")" |
  es POST /_security/user/kibana_system/_password -; do sleep 5; done

# Least privilege: templates and lifecycle policies are installed below, by this step;
# the shipper and Heartbeat only read them (monitor, read_ilm) and write their data.
log "role and user of the shipper (write its data streams, look up replayed documents, read uptime)"
es PUT /_security/role/didban_shipper - <<'JSON'
{
  "cluster": ["monitor", "read_ilm"],
  "indices": [
    {
      "names": ["logs-loan_resource-*", "logs-payment-*", "logs-reservation-*"],
      "privileges": ["create_doc", "auto_configure", "view_index_metadata", "read", "read_failure_store"]
    },
    {
      "names": ["heartbeat-*"],
      "privileges": ["read", "view_index_metadata"]
    }
  ]
}
JSON
printf '{"password":"%s","roles":["didban_shipper"],"full_name":"didban log shipper"}' \
  "$(<"$SECRETS/shipper/elasticsearch_password")" | es POST /_security/user/didban_shipper -

log "role and user of Heartbeat (its data stream, its last monitor states)"
es PUT /_security/role/didban_heartbeat - <<'JSON'
{
  "cluster": ["monitor", "read_ilm", "read_pipeline"],
  "indices": [{
    "names": ["heartbeat-*"],
    "privileges": ["create_doc", "auto_configure", "create_index", "view_index_metadata", "read"]
  }]
}
JSON
printf '{"password":"%s","roles":["didban_heartbeat"],"full_name":"didban heartbeat"}' \
  "$(<"$SECRETS/heartbeat/elasticsearch_password")" | es POST /_security/user/didban_heartbeat -

# ---- the shipper's templates and lifecycle policy ----------------------------------------
# The same files the shipper embeds (elastic-templates/elasticsearch/), in dependency order.
for file in "$TEMPLATES"/ilm_policy/*.json; do
  name=$(basename "$file" .json)
  log "ILM policy $name"
  es PUT "/_ilm/policy/$name" "$file"
done
for file in "$TEMPLATES"/component_template/*.json; do
  name=$(basename "$file" .json)
  log "component template $name"
  es PUT "/_component_template/$name" "$file"
done
# The index templates compose Elasticsearch's built-in component templates, which a new
# node installs shortly after it starts.
for builtin in logs@mappings logs@settings ecs@mappings; do
  until es GET "/_component_template/$builtin" 2>/dev/null; do
    log "waiting for Elasticsearch's built-in component template $builtin"
    sleep 2
  done
done
for file in "$TEMPLATES"/index_template/*.json; do
  name=$(basename "$file" .json)
  log "index template $name"
  es PUT "/_index_template/$name" "$file"
done

log "done; the elastic user's password (Kibana login): docker compose exec elasticsearch cat /didban/secrets/elastic/elastic_password"
