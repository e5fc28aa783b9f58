#!/usr/bin/env bash
# A real Slurm on this machine, loopback only: munge, a controller and one compute node, no
# cgroups, no accounting database (see ../shared/docs/slurm-on-one-machine.md and
# docs/scale-out.md). For tests and CI; ports 6817/6818 are fixed, so one cluster per machine.
#
#   bash scripts/slurm_local.sh install      # apt-get the Debian packages (slurm-wlm, munge)
#   conf=$(bash scripts/slurm_local.sh start DIR) && eval "$conf"   # prints export SLURM_CONF=
#   bash scripts/slurm_local.sh stop DIR     # cancel every job, stop the daemons by PID
#   bash scripts/slurm_local.sh smoke        # start, a 4-task array + an afterok merge job,
#                                            # check their outputs, stop (whatever happens)
#   bash scripts/slurm_local.sh sharded-zonal BIN   # start; farmwatch zonal statistics of a synth
#                                            # scene as a 4-task array and an afterok merge job;
#                                            # the merged CSV must equal a one-machine run's
#   bash scripts/slurm_local.sh sharded-run BIN     # start; `farmwatch slurm` runs a pipeline on
#                                            # a synth scene as 4-task arrays (one per phase)
#                                            # and an afterok merge; every output must equal a
#                                            # one-machine run's
set -euo pipefail

die() {
  echo "slurm_local: $*" >&2
  exit 1
}

install_packages() {
  local missing=()
  for p in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

write_conf() {
  local t=$1 cpus
  cpus=$(nproc)
  cat > "$t/slurm.conf" <<CONF
ClusterName=fwlocal
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$t/munge/munge.socket
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$t/state
SlurmdSpoolDir=$t/spool
SlurmctldPidFile=$t/slurmctld.pid
SlurmdPidFile=$t/slurmd.pid
SlurmctldLogFile=$t/log/slurmctld.log
SlurmdLogFile=$t/log/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$t/log/jobcomp.txt
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
DependencyParameters=kill_invalid_depend
NodeName=fw1 NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 State=UNKNOWN
PartitionName=fw Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

# Waits up to $2 seconds for the command in $1 to succeed.
wait_for() {
  local cmd=$1 limit=$2 i=0
  while ! eval "$cmd" > /dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -ge $((limit * 10)) ] && return 1
    sleep 0.1
  done
}

start() {
  local t=$1
  mkdir -p "$t"/{munge,state,spool,log}
  chmod 755 "$t"
  t=$(cd "$t" && pwd)
  command -v slurmctld > /dev/null || die "slurmctld not found: bash scripts/slurm_local.sh install"
  write_conf "$t"
  export SLURM_CONF=$t/slurm.conf
  mungekey --create --keyfile="$t/munge/munge.key" > /dev/null 2>&1 ||
    [ -s "$t/munge/munge.key" ] || die "mungekey failed"
  munged --key-file="$t/munge/munge.key" --socket="$t/munge/munge.socket" \
    --pid-file="$t/munge/munged.pid" --log-file="$t/munge/munged.log" \
    --seed-file="$t/munge/munged.seed" || die "munged did not start ($t/munge/munged.log)"
  slurmctld -f "$SLURM_CONF" || die "slurmctld did not start ($t/log/slurmctld.log)"
  wait_for "[ -s '$t/slurmctld.pid' ] && kill -0 \$(cat '$t/slurmctld.pid') && scontrol ping | grep -q 'is UP'" 20 ||
    die "slurmctld is not up ($t/log/slurmctld.log)"
  slurmd -f "$SLURM_CONF" -N fw1 || die "slurmd did not start ($t/log/slurmd.log)"
  wait_for "[ \"\$(sinfo -h -n fw1 -o %T)\" = idle ]" 30 ||
    die "node fw1 is not idle ($t/log/slurmd.log)"
  echo "export SLURM_CONF=$SLURM_CONF"
}

stop_pid() {
  local f=$1 p i
  [ -s "$f" ] || return 0
  p=$(cat "$f")
  kill -TERM "$p" 2> /dev/null || return 0
  for i in $(seq 1 200); do
    kill -0 "$p" 2> /dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$p" 2> /dev/null || true
}

stop() {
  local t=$1
  [ -d "$t" ] || return 0
  export SLURM_CONF=$t/slurm.conf
  if [ -f "$SLURM_CONF" ] && [ -s "$t/slurmctld.pid" ] && kill -0 "$(cat "$t/slurmctld.pid")" 2> /dev/null; then
    scancel --full --user="$(id -un)" 2> /dev/null || true
    wait_for "[ -z \"\$(squeue -h)\" ]" 20 || true
  fi
  stop_pid "$t/slurmd.pid"
  stop_pid "$t/slurmctld.pid"
  stop_pid "$t/munge/munged.pid"
}

# A cluster in a fresh folder ($CLUSTER), stopped and removed when the script exits.
CLUSTER=""
temp_cluster() {
  CLUSTER=$(mktemp -d)
  trap 'stop "$CLUSTER"; rm -rf "$CLUSTER"' EXIT
  local conf
  conf=$(start "$CLUSTER") || die "could not start Slurm"
  eval "$conf"
  mkdir -p "$CLUSTER/out"
}

# A 4-task array running $1, then a job running $2 after it (afterok); waits up to $3 seconds.
# Sets ARRAY and MERGE (the job ids); outputs in $CLUSTER/out/task_<i>.out and merge.out.
ARRAY=""
MERGE=""
array_then_merge() {
  ARRAY=$(sbatch --parsable --array=0-3 -o "$CLUSTER/out/task_%a.out" --wrap "$1")
  MERGE=$(sbatch --parsable --dependency="afterok:$ARRAY" -o "$CLUSTER/out/merge.out" --wrap "$2")
  wait_for "[ -z \"\$(squeue -h -j $ARRAY,$MERGE)\" ]" "$3" ||
    die "jobs $ARRAY and $MERGE did not finish"
}

smoke() {
  temp_cluster
  local o=$CLUSTER/out
  array_then_merge 'echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT"' \
    "cat $o/task_*.out | wc -l" 120
  for i in 0 1 2 3; do
    grep -qx "task $i of 4" "$o/task_$i.out" || die "array task $i wrote no output"
  done
  [ "$(cat "$o/merge.out")" = 4 ] || die "the merge job did not run after the array"
  echo "slurm_local: a 4-task array and an afterok merge job ran (jobs $ARRAY, $MERGE)"
}

# A cluster (temp_cluster) and a synth scene in $CLUSTER/scene: $1 the farmwatch executable,
# then synth's size, parcels and seed. Sets FW (its absolute path).
FW=""
cluster_and_scene() {
  FW=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
  [ -x "$FW" ] || die "no farmwatch executable at $1"
  temp_cluster
  "$FW" --log-level warn synth --out "$CLUSTER/scene" --size "$2" --parcels "$3" --seed "$4" \
    > /dev/null
}

sharded_zonal() {
  cluster_and_scene "$1" 1024 400 4
  local fw=$FW t=$CLUSTER s=$CLUSTER/scene
  "$fw" --log-level warn indices --input "$s/date1.tif" --mask "$s/date1_scl.tif" \
    --mask-type scl --index ndvi --out "$s/ndvi" > /dev/null
  local args="--log-level warn --memory 8 zonal --raster $s/ndvi/ndvi.tif --parcels $s/parcels.gpkg"
  args="$args --stats count,mean,stdev,p10,median,p90"
  # shellcheck disable=SC2086
  "$fw" $args --out "$t/one.csv" > /dev/null
  array_then_merge "$fw $args --shard \$SLURM_ARRAY_TASK_ID/4 --run-dir $t/run" \
    "$fw $args --merge $t/run --shards 4 --out $t/merged.csv" 300
  [ -f "$t/merged.csv" ] || die "the merge job wrote nothing: $(cat "$t"/out/*.out)"
  cmp "$t/one.csv" "$t/merged.csv" || die "the merged statistics differ from the one-machine run"
  echo "slurm_local: 4 zonal shards on Slurm (array $ARRAY) and the merge (job $MERGE) equal" \
    "one machine's"
}

# The features of a vector file as text, without the times of day (when it was written).
features() {
  ogrinfo -ro -al "$1" | grep -v -e '^INFO' -E -e 'T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'
}

# Every file of folder $1 equals folder $2's: bytes, except the manifest (times) and the
# GeoPackages (compared feature by feature with ogrinfo, times left out).
same_outputs() {
  local a=$1 b=$2 f n=0
  [ "$(cd "$a" && find . -type f | sort)" = "$(cd "$b" && find . -type f | sort)" ] ||
    die "the file lists differ: $a, $b"
  while IFS= read -r f; do
    case "$f" in
      ./manifest.json) continue ;;
      *.gpkg)
        diff <(features "$a/$f") <(features "$b/$f") > /dev/null || die "$f differs" ;;
      *) cmp -s "$a/$f" "$b/$f" || die "$f differs from the one-machine run's" ;;
    esac
    n=$((n + 1))
  done < <(cd "$a" && find . -type f | sort)
  echo "$n"
}

sharded_run() {
  cluster_and_scene "$1" 1100 300 6
  local fw=$FW t=$CLUSTER s=$CLUSTER/scene
  cat > "$t/p.yaml" <<YAML
inputs:
  before: {files: [$s/date1.tif], mask: $s/date1_scl.tif, date: 2024-05-01}
  after: {files: [$s/date2.tif], mask: $s/date2_scl.tif, date: 2024-09-01}
  parcels: {file: $s/parcels.gpkg}
outputs: {dir: $t/out}
history: {store: $t/history.gpkg}
YAML
  "$fw" --log-level warn --memory 8 run "$t/p.yaml" > /dev/null
  mv "$t/out" "$t/one"
  mv "$t/history.gpkg" "$t/history-one.gpkg"
  local ids
  ids=$("$fw" --log-level warn --memory 8 slurm "$t/p.yaml" --shards 4 --run-dir "$t/run" |
    sed -n 's/^job ids: //p')
  [ -n "$ids" ] || die "farmwatch slurm submitted nothing"
  wait_for "[ -z \"\$(squeue -h -j $ids)\" ]" 600 || die "jobs $ids did not finish"
  [ -f "$t/out/manifest.json" ] ||
    die "the merge wrote nothing: $(tail -n 5 "$t"/run/slurm/*.out)"
  local n
  n=$(same_outputs "$t/one" "$t/out")
  diff <(features "$t/history-one.gpkg") <(features "$t/history.gpkg") ||
    die "the history stores differ"
  echo "slurm_local: farmwatch slurm ran 4 shards per phase and the merge (jobs $ids);" \
    "$n outputs and the history store equal one machine's"
}

case "${1:-}" in
  install) install_packages ;;
  start) start "${2:?usage: slurm_local.sh start DIR}" ;;
  stop) stop "${2:?usage: slurm_local.sh stop DIR}" ;;
  smoke) smoke ;;
  sharded-zonal) sharded_zonal "${2:?usage: slurm_local.sh sharded-zonal FARMWATCH}" ;;
  sharded-run) sharded_run "${2:?usage: slurm_local.sh sharded-run FARMWATCH}" ;;
  *) die "usage: slurm_local.sh install|start DIR|stop DIR|smoke|sharded-zonal|sharded-run FARMWATCH" ;;
esac
