#!/bin/sh
# ai-swarm etcd member: decides how this member starts, then runs etcd.
#
# etcd itself reads its settings from ETCD_* variables (ETCD_NAME,
# ETCD_DATA_DIR, ETCD_INITIAL_CLUSTER, ETCD_INITIAL_ADVERTISE_PEER_URLS, the
# TLS files …); this script reads the same variables and sets only
# ETCD_INITIAL_CLUSTER_STATE (and, when it joins, ETCD_INITIAL_CLUSTER):
#
#   1. data in ETCD_DATA_DIR: etcd starts as the member it was (the state is ignored);
#      once it is up, every member whose peer URL is not in ETCD_INITIAL_CLUSTER (a node
#      removed from the stack config) is removed, in the background (retried for 2 minutes).
#   2. empty data directory, and no other member of CLUSTER_ENDPOINTS answers:
#      a new cluster, every member "new" with the configured list.
#   3. empty data directory, and the cluster exists: every member whose peer URL
#      is not in ETCD_INITIAL_CLUSTER is removed (a lost node), a started member
#      with this member's peer URL too (this member's data was lost), then this
#      member is added (`member add`) unless the cluster already lists it as
#      never started (no client URLs: it was late to the bootstrap, or to its
#      own add), and etcd starts "existing".
#
# CLUSTER_ENDPOINTS: every member's client URL, comma-separated (this one's too).
# etcdctl talks to the others with this member's own certificate
# (ETCD_TRUSTED_CA_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE; it is a client
# certificate as well). Arguments are passed to etcd (e.g. the compaction flags).
set -eu

log() { printf 'ai-swarm-etcd: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

for variable in ETCD_NAME ETCD_DATA_DIR ETCD_INITIAL_CLUSTER ETCD_INITIAL_ADVERTISE_PEER_URLS CLUSTER_ENDPOINTS \
  ETCD_TRUSTED_CA_FILE ETCD_CERT_FILE ETCD_KEY_FILE; do
  eval "value=\${$variable:-}"
  [ -n "$value" ] || die "$variable is not set"
done
case "$ETCD_INITIAL_ADVERTISE_PEER_URLS" in
  *,*) die "ETCD_INITIAL_ADVERTISE_PEER_URLS must be one URL (got: $ETCD_INITIAL_ADVERTISE_PEER_URLS)" ;;
esac
MY_PEER_URL=$ETCD_INITIAL_ADVERTISE_PEER_URLS
# The configured list must name this member with its peer URL.
case ",$ETCD_INITIAL_CLUSTER," in
  *",$ETCD_NAME=$MY_PEER_URL,"*) ;;
  *) die "ETCD_INITIAL_CLUSTER ($ETCD_INITIAL_CLUSTER) does not list $ETCD_NAME=$MY_PEER_URL" ;;
esac

OTHERS=$(printf '%s\n' "$CLUSTER_ENDPOINTS" | tr ',' '\n' | grep -v "^${ETCD_ADVERTISE_CLIENT_URLS:-none}\$" | paste -sd, -)
ctl() {
  etcdctl --endpoints="$OTHERS" --cacert="$ETCD_TRUSTED_CA_FILE" --cert="$ETCD_CERT_FILE" --key="$ETCD_KEY_FILE" \
    --dial-timeout=2s --command-timeout=5s "$@"
}
# A membership change is refused while the cluster elects a leader, and until its leader has been
# connected to a quorum for a few seconds (etcd's strict reconfiguration check): retry for a minute.
retry() {
  tries=0
  until "$@" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || return 1
    sleep 2
  done
}
# The configured peer URLs, one a line.
configured=$(printf '%s\n' "$ETCD_INITIAL_CLUSTER" | tr ',' '\n' | sed 's/^[^=]*=//')
# "ID, status, name, peer URLs, client URLs, is learner" per member, as the other members see it.
members=
[ -n "$OTHERS" ] && { members=$(ctl member list -w simple 2>/dev/null) || members=; }

if [ -d "$ETCD_DATA_DIR/member/wal" ]; then
  # A node removed from the stack config leaves its member behind: the others remove it when
  # they restart with the new list.
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    id=$(printf '%s' "$line" | awk -F', ' '{print $1}')
    name=$(printf '%s' "$line" | awk -F', ' '{print $3}')
    peer=$(printf '%s' "$line" | awk -F', ' '{print $4}')
    [ "$peer" = "$MY_PEER_URL" ] && continue
    printf '%s\n' "$configured" | grep -qxF "$peer" && continue
    # In the background, once this member is up: without it the others may have no quorum.
    (
      for _ in $(seq 1 60); do
        sleep 2
        if ctl member remove "$id" >/dev/null 2>&1; then log "removed member ${name:-?} ($id, $peer): not in ETCD_INITIAL_CLUSTER"; exit 0; fi
      done
      log "could not remove member ${name:-?} ($id, $peer) in 2 minutes"
    ) &
  done <<MEMBERS
$members
MEMBERS
  log "data in $ETCD_DATA_DIR: starting as member $ETCD_NAME"
  exec etcd "$@"
fi

if [ -z "$members" ]; then
  log "empty $ETCD_DATA_DIR and no other member answers: bootstrapping a new cluster ($ETCD_INITIAL_CLUSTER)"
  export ETCD_INITIAL_CLUSTER_STATE=new
  exec etcd "$@"
fi

while IFS= read -r line; do
  id=$(printf '%s' "$line" | awk -F', ' '{print $1}')
  name=$(printf '%s' "$line" | awk -F', ' '{print $3}')
  peer=$(printf '%s' "$line" | awk -F', ' '{print $4}')
  clients=$(printf '%s' "$line" | awk -F', ' '{print $5}')
  if [ "$peer" = "$MY_PEER_URL" ]; then
    # Never started (no client URLs published yet): this member, late to the bootstrap or to its own add.
    [ -z "$clients" ] && continue
    log "removing member ${name:-?} ($id): it has this member's peer URL but $ETCD_DATA_DIR is empty"
  elif printf '%s\n' "$configured" | grep -qxF "$peer"; then
    continue
  else
    log "removing member ${name:-?} ($id, $peer): not in ETCD_INITIAL_CLUSTER"
  fi
  retry ctl member remove "$id" || die "member remove $id failed for a minute"
  log "removed ${name:-?} ($id)"
done <<MEMBERS
$members
MEMBERS

members=$(ctl member list -w simple) || die "member list failed after removals"
if printf '%s\n' "$members" | awk -F', ' -v url="$MY_PEER_URL" '$4 == url && $5 == "" { found = 1 } END { exit !found }'; then
  log "the cluster lists $ETCD_NAME unstarted: joining it"
else
  log "adding $ETCD_NAME ($MY_PEER_URL)"
  retry ctl member add "$ETCD_NAME" --peer-urls="$MY_PEER_URL" || die "member add $ETCD_NAME failed for a minute"
  members=$(ctl member list -w simple) || die "member list failed after member add"
fi

# Every member by its configured name (an unstarted one has none in the list).
initial=
for peer in $(printf '%s\n' "$members" | awk -F', ' '{print $4}'); do
  name=$(printf '%s\n' "$ETCD_INITIAL_CLUSTER" | tr ',' '\n' | awk -v url="$peer" '{ n = $0; sub(/=.*/, "", n); u = $0; sub(/^[^=]*=/, "", u); if (u == url) { print n; exit } }')
  [ -n "$name" ] || die "member with peer URL $peer is not in ETCD_INITIAL_CLUSTER after the removals"
  initial="${initial:+$initial,}$name=$peer"
done
export ETCD_INITIAL_CLUSTER="$initial"
export ETCD_INITIAL_CLUSTER_STATE=existing
log "joining the existing cluster as $ETCD_NAME ($ETCD_INITIAL_CLUSTER)"
exec etcd "$@"
