#!/usr/bin/env bash
# Starts, stops and reports the local Docker engine the lab (and CI) runs on.
#
#   lab/engine.sh start    install docker.io + iptables if missing, start dockerd
#                          in the background unless an engine already answers,
#                          wait for `docker info`, print the storage driver
#   lab/engine.sh stop     stop the dockerd that `start` launched (by its PID), nothing else
#   lab/engine.sh status   say whether an engine answers and whether it is ours
#
# Why by hand: this machine has no systemd, so nothing else starts dockerd.
# The PID and the log live in lab/.state/ (gitignored).
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE_DIR="$LAB_DIR/.state"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="$STATE_DIR/dockerd.log"
START_TIMEOUT_S="${ENGINE_START_TIMEOUT_S:-90}"
STOP_TIMEOUT_S="${ENGINE_STOP_TIMEOUT_S:-30}"

log() { printf '[engine] %s\n' "$*"; }
die() { printf '[engine] error: %s\n' "$*" >&2; exit 1; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

storage_driver() { docker info --format '{{.Driver}}' 2>/dev/null || echo unknown; }
server_version() { docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown; }

# The PID recorded by `start`, but only while that process is still a dockerd:
# a stale file (reboot, PID reuse) must never make us signal someone else's process.
our_dockerd_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "dockerd" ]] || return 1
  echo "$pid"
}

# Debian's docker.io postinst would try to start the service through its init
# script; a temporary policy-rc.d (exit 101 = "not allowed") keeps it from doing
# so, because this script wants to own the one dockerd it starts.
install_packages() {
  local missing=()
  { command -v dockerd && command -v docker; } >/dev/null 2>&1 || missing+=(docker.io)
  command -v iptables >/dev/null 2>&1 || missing+=(iptables)
  ((${#missing[@]} == 0)) && return 0

  log "installing ${missing[*]} from Debian (apt-get)…"
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends docker.io iptables ca-certificates; } >"$STATE_DIR/apt.log" 2>&1 || rc=$?
  ((added_policy)) && rm -f "$policy"
  ((rc == 0)) || { tail -n 20 "$STATE_DIR/apt.log" >&2; die "apt-get install docker.io iptables failed (log: $STATE_DIR/apt.log)"; }
  log "installed: $(dockerd --version)"
}

launch_dockerd() {
  log "starting dockerd (log: $LOG_FILE)"
  # setsid + nohup: the daemon must outlive this script and its terminal.
  setsid nohup dockerd >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
}

wait_until_answering() {
  local pid="$1" waited=0
  until engine_answers; do
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "dockerd" ]]; then
      tail -n 25 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      die "dockerd (pid $pid) exited before answering; last lines of $LOG_FILE above"
    fi
    ((waited >= START_TIMEOUT_S)) && die "dockerd (pid $pid) did not answer \`docker info\` within ${START_TIMEOUT_S}s (log: $LOG_FILE)"
    ((waited > 0 && waited % 5 == 0)) && log "waiting for dockerd to answer… ${waited}s"
    sleep 1
    waited=$((waited + 1))
  done
}

cmd_start() {
  mkdir -p "$STATE_DIR"
  if engine_answers; then
    local owner="not started by lab/engine.sh"
    our_dockerd_pid >/dev/null && owner="pid $(our_dockerd_pid), started by lab/engine.sh"
    log "engine already answering ($owner): server $(server_version), storage driver $(storage_driver)"
    return 0
  fi
  install_packages
  local pid
  if pid="$(our_dockerd_pid)"; then
    log "dockerd pid $pid (ours) is running but not answering yet; waiting for it"
  else
    rm -f "$PID_FILE"
    launch_dockerd
    pid="$(cat "$PID_FILE")"
  fi
  wait_until_answering "$pid"
  log "engine ready: pid $pid, server $(server_version), storage driver $(storage_driver)"
}

cmd_stop() {
  local pid
  if ! pid="$(our_dockerd_pid)"; then
    rm -f "$PID_FILE"
    log "no dockerd started by lab/engine.sh is running; nothing to stop"
    return 0
  fi
  log "stopping dockerd pid $pid (SIGTERM; it stops its containers first)"
  kill -TERM "$pid"
  local waited=0
  while [[ -e "/proc/$pid" ]]; do
    if ((waited >= STOP_TIMEOUT_S)); then
      log "dockerd pid $pid still running after ${STOP_TIMEOUT_S}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    ((waited > 0 && waited % 5 == 0)) && log "waiting for dockerd to exit… ${waited}s"
    sleep 1
    waited=$((waited + 1))
  done
  rm -f "$PID_FILE"
  log "dockerd stopped"
}

cmd_status() {
  local pid ours="no"
  pid="$(our_dockerd_pid)" && ours="yes (pid $pid)"
  if engine_answers; then
    log "engine: answering; server $(server_version); storage driver $(storage_driver); started by lab: $ours"
  else
    log "engine: not answering; started by lab: $ours"
    return 1
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) die "usage: lab/engine.sh start|stop|status (got: '${1:-}')" ;;
esac
