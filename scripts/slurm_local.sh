#!/usr/bin/env bash
# A single-node Slurm on this machine, for the tests of `hetero submit` (tests/test_hpc_slurm.py).
#   scripts/slurm_local.sh start   install Debian's slurm + munge if missing, write the config, start the daemons
#   scripts/slurm_local.sh stop    stop the daemons this script started (by their pids)
#   scripts/slurm_local.sh status  print whether the node takes jobs
# Needs root (no systemd: daemons are started directly). Idempotent; never purges packages.
set -euo pipefail

STATE=/run/hetero-slurm           # pid files and the list of daemons this script started
SPOOL=/var/lib/hetero-slurm       # slurmctld state and slurmd spool
CONF=/etc/slurm/slurm.conf
MARK="# written by hetero scripts/slurm_local.sh"
PKGS="slurmctld slurmd slurm-client munge"

log() { echo "slurm_local: $*"; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "needs root (it installs packages and starts slurmctld, slurmd and munged); run as root or with sudo"
    exit 2
  fi
}

install_packages() {
  local missing=""
  for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  log "installing$missing"
  apt-get update -q >/dev/null
  # the packages must not start their own services (this script starts them with its own config):
  # a policy-rc.d answering 101 says so; add one for the install where the machine has none
  local own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null || rc=$?
  [ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || { log "apt-get install$missing failed (exit $rc)"; exit 5; }
}

write_config() {
  if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    log "$CONF exists and was not written by this script; refusing to overwrite it (this machine has its own Slurm)"
    exit 3
  fi
  local host cpus
  host=$(hostname -s)
  cpus=$(nproc)
  mkdir -p /etc/slurm "$SPOOL/ctld" "$SPOOL/d" "$STATE"
  cat > "$CONF.new" <<EOF
$MARK
ClusterName=hetero-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
KillWait=2
MinJobAge=600
InactiveLimit=0
SlurmdTimeout=300
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  mv "$CONF.new" "$CONF"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  if pgrep -x munged >/dev/null; then return 0; fi   # someone's munged already serves this machine
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --force; else dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none; fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  for _ in $(seq 50); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.1; done
  cp /run/munge/munged.pid "$STATE/munged.pid"
  echo munged >> "$STATE/started"
}

start() {
  need_root
  if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid"; then
    log "already running"
    wait_idle
    return 0
  fi
  install_packages
  write_config
  touch "$STATE/started"
  start_munge
  if ! alive "$STATE/slurmctld.pid"; then
    /usr/sbin/slurmctld -f "$CONF"
    echo slurmctld >> "$STATE/started"
  fi
  if ! alive "$STATE/slurmd.pid"; then
    /usr/sbin/slurmd -f "$CONF"
    echo slurmd >> "$STATE/started"
  fi
  wait_idle
}

wait_idle() {
  local host state
  host=$(hostname -s)
  for _ in $(seq 120); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    case "$state" in
      idle*|mixed*|allocated*) log "node $host is $state"; return 0 ;;
      down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  log "node $host did not come up (state: ${state:-none}); see $STATE/slurmctld.log and $STATE/slurmd.log"
  exit 4
}

stop() {
  [ -f "$STATE/started" ] || { log "nothing started by this script"; return 0; }
  local pid
  # reverse order of start: slurmd, slurmctld, then munged
  for d in slurmd slurmctld munged; do
    grep -qx "$d" "$STATE/started" || continue
    [ -f "$STATE/$d.pid" ] || continue
    pid=$(cat "$STATE/$d.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      log "stopped $d (pid $pid)"
    fi
    rm -f "$STATE/$d.pid"
  done
  rm -f "$STATE/started"
}

status() {
  if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid"; then
    sinfo -h -o "%N %T %c CPUs"
  else
    log "not running"; exit 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status"; exit 64 ;;
esac
