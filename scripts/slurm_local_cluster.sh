#!/usr/bin/env bash
# Stand up a one-node SLURM cluster on this machine (Debian/Ubuntu, root): munge, MariaDB + slurmdbd
# (submitit polls sacct, so accounting is required), slurmctld and slurmd, one partition `debug` with
# every CPU of the machine. Works without systemd and without cgroups (containers, CI). Idempotent: a
# daemon that answers is left alone, one that does not is started (stale pid and lock files of killed
# daemons are overridden). Try a sweep on it with
#     lossbench run -m hydra/launcher=slurm_cpu seed=0,1
# Stop it with: scripts/slurm_local_cluster.sh stop
# Settings: MAX_ARRAY_SIZE (default 4, small on purpose: lossbench splits larger grids into several arrays,
# and the tests check that it does), the cluster's largest job array.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "${1:-start}" = "stop" ]; then
  for pid in /run/slurm/slurmd.pid /run/slurm/slurmctld.pid /run/slurm/slurmdbd.pid; do
    [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  pkill -x mariadbd 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge mariadb-server >/dev/null
fi
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) * 85 / 100 ))

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "slurm_local_cluster: $what did not come up within ${seconds}s" >&2
  return 1
}

# munge (the Debian service scripts are blocked without an init system: start each daemon by hand)
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
answers() { "$@" >/dev/null 2>&1; }
answers sh -c 'munge -n | unmunge' || runuser -u munge -- /usr/sbin/munged --force
wait_for 30 munge sh -c 'munge -n | unmunge'

# MariaDB + slurmdbd
install -d -o mysql -g mysql -m 0755 /run/mysqld
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
answers mariadb -uroot -e 'select 1' || { runuser -u mysql -- /usr/sbin/mariadbd --datadir=/var/lib/mysql \
    --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 --skip-log-bin >/var/log/mariadbd.log 2>&1 & }
wait_for 60 mariadb mariadb -uroot -e 'select 1'
mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbpass';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld /var/log/slurm /run/slurm
install -d -m 0755 /var/spool/slurmd
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurmdbpass
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
CONF
chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 600 /etc/slurm/slurmdbd.conf
answers bash -c 'echo > /dev/tcp/127.0.0.1/6819' || slurmdbd
wait_for 60 slurmdbd bash -c 'echo > /dev/tcp/127.0.0.1/6819'

# slurm.conf: no cgroups (proctrack/linuxproc, task/none), cons_tres, one partition "debug"
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=lossbench
SlurmctldHost=${HOST}
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
KillWait=10
MaxArraySize=${MAX_ARRAY_SIZE:-4}
NodeName=${HOST} CPUs=${CPUS} RealMemory=${MEM} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=60 State=UP
CONF
if answers scontrol ping && scontrol ping | grep -q UP; then scontrol reconfigure; else slurmctld -i; fi
wait_for 30 slurmctld sh -c 'scontrol ping | grep -q UP'
pgrep -x slurmd >/dev/null || slurmd
wait_for 90 "slurmd (idle node)" sh -c 'sinfo -h -o %T | grep -qx idle'
sinfo
