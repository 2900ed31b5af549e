#!/usr/bin/env bash
# plan.sh: time `terraform plan` of N namespaces declared with nvme_connection
# against the same configuration served by a do-nothing provider (noop_thing,
# ./noop) and against N terraform_data (Terraform's built-in resource), on
# the same machine in the same run, alternating so drift hits all alike.
#
# N namespaces come in the two shapes a fleet has:
#   many: N subsystems with one namespace each (N resources), as targets that
#         export one subsystem per volume do;
#   one:  one subsystem with N namespaces (one resource with an N-entry map).
# The no-op provider gets the same configuration text for each shape.
#
# Prints every run, the medians and the ratios nvme/noop per shape, of wall
# time and of CPU time (user+sys of terraform and the plugins it reaps): on
# a shared machine the wall time follows the other load, the CPU time much
# less.
#
# usage: test/providerbench/plan.sh [N [RUNS]]   (defaults 500 and 7)
# env:   PROVIDER_BIN  a built terraform-provider-nvme (else built here)
#        PROFILE=1     serve nvme_connection with ./profiled and leave CPU
#                      profiles of the provider in $WORK/profiles
#        WORK          scratch directory (default .cache/provider/bench)
set -euo pipefail

n=${1:-500}
runs=${2:-7}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-$root/.cache/provider/bench}
rm -rf "$work"
mkdir -p "$work/plugins" "$work/profiles"

if [[ ${PROFILE:-} == 1 ]]; then
	(cd "$root" && go build -trimpath -o "$work/plugins/terraform-provider-nvme" ./test/providerbench/profiled)
	export NVME_CPU_PROFILE="$work/profiles"
elif [[ -n ${PROVIDER_BIN:-} ]]; then
	cp "$PROVIDER_BIN" "$work/plugins/terraform-provider-nvme"
else
	(cd "$root" && go build -trimpath -o "$work/plugins/terraform-provider-nvme" ./provider/cmd/terraform-provider-nvme)
fi
(cd "$root" && go build -trimpath -o "$work/plugins/terraform-provider-noop" ./test/providerbench/noop)

cat >"$work/terraformrc" <<CFG
provider_installation {
  dev_overrides {
    "nvmeof/nvme" = "$work/plugins"
    "nvmeof/noop" = "$work/plugins"
  }
  direct {}
}
CFG

# config DIR PROVIDER RESOURCE SHAPE: the benchmark's configuration for one
# provider. Only nvme gets a provider block: its defaults are part of what
# it plans.
config() {
	local dir=$1 provider=$2 type=$3 shape=$4
	mkdir -p "$dir"
	{
		cat <<TF
terraform {
  required_providers {
    $provider = { source = "nvmeof/$provider" }
  }
}
TF
		if [[ $provider == nvme ]]; then
			cat <<TF

provider "nvme" {
  defaults {
    ctrl_loss_tmo   = 600
    reconnect_delay = 10
  }
}
TF
		fi
		if [[ $shape == many ]]; then
			cat <<TF

resource "$type" "bench" {
  count         = $n
  traddr        = "192.0.2.10"
  subsystem_nqn = "nqn.2014-08.org.example:bench\${count.index}"
  namespaces    = { "vol\${count.index}" = { nsid = 1 } }
}
TF
		else
			cat <<TF

resource "$type" "bench" {
  traddr        = "192.0.2.10"
  subsystem_nqn = "nqn.2014-08.org.example:bench"
  namespaces    = { for i in range($n) : "vol\${i}" => { nsid = i + 1 } }
}
TF
		fi
	} >"$dir/main.tf"
}

config "$work/nvme-many" nvme nvme_connection many
config "$work/noop-many" noop noop_thing many
config "$work/nvme-one" nvme nvme_connection one
config "$work/noop-one" noop noop_thing one
mkdir -p "$work/data"
cat >"$work/data/main.tf" <<TF
resource "terraform_data" "bench" {
  count = $n
  input = {
    traddr = "192.0.2.10"
    nsid   = count.index + 1
  }
}
TF

export TF_CLI_CONFIG_FILE="$work/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1

# plan_ms DIR: "wall cpu" milliseconds of one full plan (no state yet, so
# every resource is planned for creation).
plan_ms() {
	local t
	t=$( { TIMEFORMAT='%R %U %S'; time terraform -chdir="$1" plan -input=false -lock=false -no-color >/dev/null; } 2>&1 )
	awk '{printf "%d %d\n", $1 * 1000, ($2 + $3) * 1000}' <<<"$t"
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

configs=(nvme-many noop-many nvme-one noop-one data)
declare -A wall cpu
# One unmeasured plan each: page cache, plugin start-up paths.
for c in "${configs[@]}"; do plan_ms "$work/$c" >/dev/null; done

for ((i = 1; i <= runs; i++)); do
	line="run $i (wall/cpu ms):"
	for c in "${configs[@]}"; do
		read -r w u < <(plan_ms "$work/$c")
		wall[$c]+="$w "
		cpu[$c]+="$u "
		line+=" $c $w/$u,"
	done
	echo "${line%,}"
done

declare -A mw mc
for c in "${configs[@]}"; do
	mw[$c]=$(printf '%s\n' ${wall[$c]} | median)
	mc[$c]=$(printf '%s\n' ${cpu[$c]} | median)
done
echo "terraform $(terraform version | head -1 | awk '{print $2}'), $n namespaces, $runs runs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %8s %8s\n' median wall_ms cpu_ms
for c in "${configs[@]}"; do
	printf '%-16s %8s %8s\n' "$c" "${mw[$c]}" "${mc[$c]}"
done
ratio() { awk -v a="$2" -v b="$3" -v c="$4" -v d="$5" -v name="$1" 'BEGIN {printf "%s wall %.2f, cpu %.2f\n", name, a / b, c / d}'; }
ratio "ratio many (nvme / noop, goal <= 1.5):" "${mw[nvme-many]}" "${mw[noop-many]}" "${mc[nvme-many]}" "${mc[noop-many]}"
ratio "ratio one  (nvme / noop, goal <= 1.5):" "${mw[nvme-one]}" "${mw[noop-one]}" "${mc[nvme-one]}" "${mc[noop-one]}"
ratio "floor (noop many / terraform_data):   " "${mw[noop-many]}" "${mw[data]}" "${mc[noop-many]}" "${mc[data]}"
if [[ ${PROFILE:-} == 1 ]]; then
	echo "CPU profiles: $work/profiles (go tool pprof -top <binary> $work/profiles/cpu-*.pprof)"
fi
