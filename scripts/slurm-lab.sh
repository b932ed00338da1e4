#!/usr/bin/env bash
# slurm-lab.sh - a real Slurm 22.05 cluster on localhost, for aicc's tests and benchmarks.
#
#   bash scripts/slurm-lab.sh start    # install missing Debian packages, write configs, start
#   bash scripts/slurm-lab.sh status   # exit 0 when slurmctld answers and all nodes are up
#   bash scripts/slurm-lab.sh stop     # stop what `start` started, by PID only
#   bash scripts/slurm-lab.sh restart-ctld   # restart slurmctld keeping its saved state
#
# Debian 12 packages, no systemd, no cgroups: NODES emulated nodes n1..nN (one slurmd each on
# its own port) with GPUS fake GPUs each (char devices, GRES type GRES_TYPE), select/cons_tres,
# munge, slurmdbd on MariaDB (an already answering local MariaDB is used, else one is started).
# Everything lives under LAB; `$LAB/env.sh` exports SLURM_CONF. `start` is idempotent: when the
# lab answers it does nothing; otherwise it starts a fresh cluster (state and accounting wiped).
set -euo pipefail

LAB=${AICC_SLURM_LAB:-${TMPDIR:-/tmp}/aicc-slurm-lab}
CLUSTER=${CLUSTER:-aicclab}
NODES=${NODES:-4}
GPUS=${GPUS:-8}
GRES_TYPE=${GRES_TYPE:-h100}
CPUS=${CPUS:-16}
MEM_MB=${MEM_MB:-128000}
CTLD_PORT=${CTLD_PORT:-16817}
DBD_PORT=${DBD_PORT:-16819}
SLURMD_BASE_PORT=${SLURMD_BASE_PORT:-17100}   # node i listens on BASE+i
DB_PASS=${DB_PASS:-aicc-slurm-pw}
export SLURM_CONF=$LAB/etc/slurm.conf

log() { echo "slurm-lab: $*"; }
die() { echo "slurm-lab: $*" >&2; exit 1; }

# Daemons double-fork and linger as zombies until PID 1 reaps them: Z counts as gone.
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit ($3 == "Z") ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }
pid_alive() { [ -s "$1" ] && alive "$(cat "$1")"; }

is_up() {
  [ -f "$SLURM_CONF" ] || return 1
  pid_alive "$LAB/run/slurmctld.pid" || return 1
  timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
  local n; n=$(timeout 5 sinfo -h -N -t idle,mix,alloc -o '%N' 2>/dev/null | sort -u | wc -l)
  [ "$n" = "$NODES" ]
}

install_packages() {
  local pkgs="munge slurmctld slurmd slurm-client slurmdbd mariadb-client" missing="" p
  mysql_answers || pkgs="$pkgs mariadb-server"
  for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  [ "$(id -u)" = 0 ] || die "missing Debian packages:$missing (run as root to install them)"
  command -v apt-get >/dev/null || die "missing packages:$missing and no apt-get on this machine"
  log "installing$missing"
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # keep postinst scripts from starting daemons
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

# Debian's root@localhost authenticates by unix socket; a root with no password also over TCP.
mysql_root() { mysql -u root "$@" 2>/dev/null || mysql -h 127.0.0.1 -u root "$@"; }
mysql_answers() { command -v mysqladmin >/dev/null && mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; }

start_munge() {
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey -c -k /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  cp /run/munge/munged.pid "$LAB/run/started-munged.pid"
}

start_mariadb() {
  mysql_answers && return 0
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 --innodb-buffer-pool-size=128M \
      --pid-file=/run/mysqld/mysqld.pid --socket=/run/mysqld/mysqld.sock \
      >"$LAB/log/mariadb.log" 2>&1 &
  echo $! > "$LAB/run/started-mariadb.pid"
  for _ in $(seq 150); do mysql_answers && return 0; sleep 0.2; done
  die "MariaDB did not answer on 127.0.0.1:3306 (see $LAB/log/mariadb.log)"
}

write_configs() {
  local last=$((GPUS - 1))
  cat > "$SLURM_CONF" <<EOF
# Written by aicc scripts/slurm-lab.sh
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((SLURMD_BASE_PORT + 1))
StateSaveLocation=$LAB/state
SlurmdSpoolDir=$LAB/spool/%n
SlurmctldPidFile=$LAB/run/slurmctld.pid
SlurmdPidFile=$LAB/run/slurmd-%n.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd-%n.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
GresTypes=gpu
ReturnToService=1
SlurmdParameters=config_overrides
MinJobAge=60
KillWait=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations,limits,qos
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
PriorityType=priority/multifactor
PriorityWeightFairshare=10000
PreemptType=preempt/none
AccountingStoreFlags=job_comment
TopologyPlugin=topology/tree
NodeName=n[1-$NODES] NodeHostname=localhost NodeAddr=127.0.0.1 Port=[$((SLURMD_BASE_PORT + 1))-$((SLURMD_BASE_PORT + NODES))] CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:$GRES_TYPE:$GPUS State=UNKNOWN
PartitionName=gpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  { echo "AutoDetect=off"
    echo "NodeName=n[1-$NODES] Name=gpu Type=$GRES_TYPE File=$LAB/dev/nvidia[0-$last]"
  } > "$LAB/etc/gres.conf"
  # Two nodes per leaf switch, all leaves under one spine: aicc reads this as leaf/pod.
  { local i
    for ((i = 1; i <= NODES; i += 2)); do
      echo "SwitchName=leaf$(( (i + 1) / 2 )) Nodes=n[$i-$(( i + 1 < NODES ? i + 1 : NODES ))]"
    done
    echo "SwitchName=spine1 Switches=leaf[1-$(( (NODES + 1) / 2 ))]"
  } > "$LAB/etc/topology.conf"
  cat > "$LAB/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$LAB/log/slurmdbd.log
PidFile=$LAB/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=aicc_slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db_$CLUSTER
EOF
  chmod 600 "$LAB/etc/slurmdbd.conf"
  echo "export SLURM_CONF=$SLURM_CONF" > "$LAB/env.sh"
}

start_ctld() {
  slurmctld -f "$SLURM_CONF" "$@"
  for _ in $(seq 100); do timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' && return 0; sleep 0.1; done
  die "slurmctld did not come up (see $LAB/log/slurmctld.log)"
}

cmd_start() {
  if is_up; then log "already up ($SLURM_CONF)"; return 0; fi
  [ "$(id -u)" = 0 ] || die "must run as root (emulated nodes need mknod and SlurmUser=root)"
  mkdir -p "$LAB"/{etc,state,log,run,spool,dev}
  install_packages
  cmd_stop >/dev/null 2>&1 || true                 # leftovers of a half-started lab
  rm -rf "${LAB:?}"/state/* "${LAB:?}"/spool/*
  for i in $(seq 1 "$NODES"); do mkdir -p "$LAB/spool/n$i"; done
  # gres/gpu drops GPUs without File=, and File= must be a char or block device (as /dev/null).
  for ((g = 0; g < GPUS; g++)); do [ -e "$LAB/dev/nvidia$g" ] || mknod "$LAB/dev/nvidia$g" c 1 3; done
  write_configs
  start_munge
  start_mariadb
  mysql_root -e "DROP DATABASE IF EXISTS slurm_acct_db_$CLUSTER;
      CREATE USER IF NOT EXISTS 'aicc_slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
      CREATE USER IF NOT EXISTS 'aicc_slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
      GRANT ALL ON slurm_acct_db_$CLUSTER.* TO 'aicc_slurm'@'localhost';
      GRANT ALL ON slurm_acct_db_$CLUSTER.* TO 'aicc_slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
  slurmdbd                                   # finds slurmdbd.conf next to $SLURM_CONF; daemonizes
  for _ in $(seq 150); do timeout 5 sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.1; done
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
  start_ctld
  for i in $(seq 1 "$NODES"); do slurmd -f "$SLURM_CONF" -N "n$i"; done
  for _ in $(seq 300); do
    [ "$(sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | wc -l)" = "$NODES" ] && break
    sleep 0.1
  done
  is_up || die "nodes did not come up idle (see $LAB/log/)"
  log "up: $NODES nodes x gpu:$GRES_TYPE:$GPUS, cluster $CLUSTER; export SLURM_CONF=$SLURM_CONF"
}

cmd_stop() {
  [ -d "$LAB/run" ] || { log "not running"; return 0; }
  if pid_alive "$LAB/run/slurmctld.pid"; then     # no stray slurmstepd left behind
    local jobs; jobs=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -n "$jobs" ] && timeout 5 scancel $jobs 2>/dev/null && sleep 1
  fi
  local pids="" f p
  for f in "$LAB"/run/slurmd-*.pid "$LAB/run/slurmctld.pid" "$LAB/run/slurmdbd.pid" \
           "$LAB/run/started-mariadb.pid" "$LAB/run/started-munged.pid"; do
    [ -s "$f" ] || continue
    p=$(cat "$f"); rm -f "$f"
    alive "$p" || continue
    kill "$p" 2>/dev/null && pids="$pids $p"
    case "$f" in */slurmctld.pid|*/slurmdbd.pid|*/started-mariadb.pid)   # let them save state
      for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done;; esac
  done
  for p in $pids; do for _ in $(seq 50); do alive "$p" || break; sleep 0.1; done; done
  log "stopped"
}

cmd_status() {
  if is_up; then
    log "up ($SLURM_CONF)"; sinfo -o '%P %a %D %T %N %G'; return 0
  fi
  log "down"; return 1
}

cmd_restart_ctld() {
  pid_alive "$LAB/run/slurmctld.pid" || die "slurmctld is not running"
  local p; p=$(cat "$LAB/run/slurmctld.pid")
  kill "$p"; for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
  start_ctld                                  # no -c: saved jobs and nodes are recovered
  log "slurmctld restarted"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart-ctld) cmd_restart_ctld ;;
  *) echo "usage: $0 start|stop|status|restart-ctld" >&2; exit 2 ;;
esac
