#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for seki's Slurm executor tests
# and measurements: Debian's slurmctld, slurmd, slurm-client and munge, run
# without systemd (munged first, then slurmctld and slurmd). Needs root.
#
#   scripts/slurm-cluster.sh start    install the packages if missing, write
#                                     the config, start the daemons and wait
#                                     until the node takes jobs (idempotent)
#   scripts/slurm-cluster.sh stop     stop the daemons this script started
#   scripts/slurm-cluster.sh status   say whether the cluster takes jobs
#
# The node offers SEKI_SLURM_CPUS (default 8) CPUs whatever the machine has
# (SlurmdParameters=config_overrides), so several small jobs run at once on
# a small machine; one partition, `debug`. No accounting daemon: `sacct`
# does not work here, and seki falls back to `squeue` and `scontrol`.
#
# An /etc/slurm/slurm.conf that this script did not write (a real cluster's)
# is never touched: `start` then only reports on that cluster.
set -euo pipefail

conf=/etc/slurm/slurm.conf
marker="# written by seki scripts/slurm-cluster.sh"
cpus=${SEKI_SLURM_CPUS:-8}
log_dir=/var/log/slurm

say() { echo "slurm-cluster: $*" >&2; }

takes_jobs() {
  command -v sinfo >/dev/null 2>&1 || return 1
  local state
  state=$(timeout 10 sinfo -h -o '%t' 2>/dev/null | head -n1) || return 1
  case "$state" in
    idle* | mix* | alloc* | comp*) return 0 ;;
    *) return 1 ;;
  esac
}

ours() { [ -f "$conf" ] && grep -qF "$marker" "$conf"; }

install_packages() {
  local missing=()
  for bin in slurmctld slurmd sbatch munged; do
    command -v "$bin" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing ${missing[*]}; as root on Debian: apt-get install slurmctld slurmd slurm-client munge"
    return 1
  fi
  say "installing slurmctld slurmd slurm-client munge"
  local pkgs=(slurmctld slurmd slurm-client munge)
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null; }
}

write_config() {
  local host mem
  host=$(hostname -s)
  # Memory the node offers: what the machine has, less 1 GiB, in MiB.
  mem=$(awk '/^MemTotal:/ { m = int($2 / 1024) - 1024; print (m > 1024 ? m : 1024) }' /proc/meminfo)
  mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$log_dir"
  cat >"$conf.tmp" <<EOF
$marker (a one-node test cluster)
ClusterName=seki
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
KillWait=2
OverTimeLimit=0
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
}

start_munge() {
  if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
  fi
  if id munge >/dev/null 2>&1; then
    chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
  else
    /usr/sbin/munged --force
  fi
  for _ in $(seq 50); do
    munge -n </dev/null >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  say "munged did not start"
  return 1
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  if takes_jobs; then
    say "up ($(sinfo -h -o '%P %t %c CPUs' | head -n1))"
    return 0
  fi
  if [ -f "$conf" ] && ! ours; then
    say "$conf belongs to another cluster, which does not take jobs now; not touching it"
    return 1
  fi
  if [ "$(id -u)" != 0 ]; then
    say "starting the test cluster needs root"
    return 1
  fi
  install_packages
  write_config
  start_munge
  running /run/slurmctld.pid || /usr/sbin/slurmctld -c
  running /run/slurmd.pid || /usr/sbin/slurmd
  for _ in $(seq 150); do
    if takes_jobs; then
      say "up ($(sinfo -h -o '%P %t %c CPUs' | head -n1))"
      return 0
    fi
    # A node left down by an earlier run comes back.
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    sleep 0.2
  done
  say "the node does not take jobs; see $log_dir/slurmctld.log and $log_dir/slurmd.log"
  sinfo >&2 || true
  return 1
}

stop() {
  if ! ours; then
    say "no test cluster of this script's here"
    return 0
  fi
  for pid in /run/slurmd.pid /run/slurmctld.pid; do
    if running "$pid"; then
      kill "$(cat "$pid")"
    fi
  done
  say "stopped slurmd and slurmctld (munged left running)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if takes_jobs; then
      say "up ($(sinfo -h -o '%P %t %c CPUs' | head -n1))"
    else
      say "down"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
