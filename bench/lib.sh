# Shared helpers of the benchmark scripts (sourced; W must be set to the work folder).
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# timeit LABEL COMMAND...: prints "LABEL seconds peakKiB" (median of 3 runs; W/out emptied
# before each run).
timeit() {
  local label=$1; shift
  local ts=() mem=0
  for i in 1 2 3; do
    rm -rf "$W"/out; mkdir -p "$W"/out
    local s
    s=$( { /usr/bin/time -f "%e %M" "$@" >/dev/null 2>"$W/err"; } 2>&1; tail -1 "$W/err")
    ts+=("$(echo "$s" | tail -1 | awk '{print $1}')")
    mem=$(echo "$s" | tail -1 | awk '{print $2}')
  done
  echo "$label $(printf '%s\n' "${ts[@]}" | median) $mem"
}
