#!/bin/bash
# PID 1 of a lab VM. Starts sshd and dockerd side by side and stops the VM
# (container) as soon as either of them exits, so a broken VM is visible.
#   LAB_AUTHORIZED_KEY   the lab's public key, written to /root/.ssh/authorized_keys
#   extra arguments      passed on to dockerd
set -euo pipefail

log() { echo "[vm] $*"; }

install_authorized_key() {
  if [[ -z "${LAB_AUTHORIZED_KEY:-}" ]]; then
    log "LAB_AUTHORIZED_KEY is empty: nobody can log in over SSH"
    return
  fi
  install -d -m 0700 /root/.ssh
  printf '%s\n' "$LAB_AUTHORIZED_KEY" >/root/.ssh/authorized_keys
  chmod 0600 /root/.ssh/authorized_keys
}

# On a cgroup v2 host, dockerd can only create child cgroups once no process
# sits in the root cgroup (same step as the official docker:dind image).
prepare_cgroup_v2_nesting() {
  [[ -f /sys/fs/cgroup/cgroup.controllers ]] || return 0
  mkdir -p /sys/fs/cgroup/init
  xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || true
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
    >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
}

start_sshd() {
  mkdir -p /run/sshd
  ssh-keygen -A >/dev/null
  /usr/sbin/sshd -D -e &
  SSHD_PID=$!
}

start_dockerd() {
  rm -f /var/run/docker.pid
  dockerd "$@" &
  DOCKERD_PID=$!
}

# shellcheck disable=SC2317 # called by the TERM/INT trap
stop_all() {
  log "stopping dockerd and sshd"
  kill -TERM "$DOCKERD_PID" "$SSHD_PID" 2>/dev/null || true
  wait || true
  exit 0
}

install_authorized_key
prepare_cgroup_v2_nesting
start_sshd
start_dockerd "$@"
trap stop_all TERM INT
log "$(hostname): sshd pid $SSHD_PID, dockerd pid $DOCKERD_PID"
# Whichever exits first takes the VM down with it.
set +e
wait -n "$SSHD_PID" "$DOCKERD_PID"
status=$?
log "sshd or dockerd exited (status $status); stopping the VM"
kill -TERM "$DOCKERD_PID" "$SSHD_PID" 2>/dev/null
wait
exit "$status"
