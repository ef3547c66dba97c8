#!/bin/bash
# A single-node SLURM cluster on this host for the `slurm` tests: slurmctld + slurmd + munged.
#   tests/cluster/slurm.sh start <dir>   installs slurm-wlm and munge with apt-get when absent, writes the
#                                         config under <dir>, starts the daemons, waits until the node is idle
#   tests/cluster/slurm.sh stop <dir>    stops every daemon it started, by the PIDs it recorded in <dir>
# Prints `SLURM_CONF=<dir>/slurm.conf` on success; exits non-zero with the reason otherwise.
set -euo pipefail
action=${1:?start|stop}; dir=$(realpath -m "${2:?state dir}")

stop() {
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then kill "$(cat "$dir/$name.pid")" 2>/dev/null || true; fi
  done
  for name in slurmd slurmctld munged; do  # wait for each to exit, so a next cluster can take the ports
    if [ -f "$dir/$name.pid" ]; then
      pid=$(cat "$dir/$name.pid"); for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$dir/$name.pid"
    fi
  done
}

if [ "$action" = stop ]; then stop; exit 0; fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "slurm-wlm and munge are not installed and cannot be installed here (needs root and apt-get)" >&2; exit 3
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >"$dir.apt.log" 2>&1 \
    || { echo "apt-get install slurm-wlm munge failed (see $dir.apt.log)" >&2; exit 3; }
fi

mkdir -p "$dir"/{state,spool,munge}
host=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
port=$(( 20000 + RANDOM % 20000 ))
# munge: a key of its own and a socket in the state dir
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null; chmod 600 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/socket" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed"
cat >"$dir/slurm.conf" <<CONF
ClusterName=dqncli
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -i
slurmd
for _ in $(seq 300); do  # until the node takes jobs
  if sinfo -h -N -o "%T" 2>/dev/null | grep -qx idle; then echo "SLURM_CONF=$SLURM_CONF"; exit 0; fi
  sleep 0.2
done
echo "the node never became idle: $(sinfo -h -N -o '%T %E' 2>&1 | head -1); see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop; exit 4
