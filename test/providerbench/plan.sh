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
# Prints every run, the medians and the ratios nvme/noop per shape.
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

# plan_ms DIR: wall-clock milliseconds of one full plan (no state yet, so
# every resource is planned for creation).
plan_ms() {
	local start end
	start=$(date +%s%N)
	terraform -chdir="$1" plan -input=false -lock=false -no-color >/dev/null
	end=$(date +%s%N)
	echo $(((end - start) / 1000000))
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

configs=(nvme-many noop-many nvme-one noop-one data)
declare -A times
# One unmeasured plan each: page cache, plugin start-up paths.
for c in "${configs[@]}"; do plan_ms "$work/$c" >/dev/null; done

for ((i = 1; i <= runs; i++)); do
	line="run $i:"
	for c in "${configs[@]}"; do
		ms=$(plan_ms "$work/$c")
		times[$c]+="$ms "
		line+=" $c $ms ms,"
	done
	echo "${line%,}"
done

declare -A med
for c in "${configs[@]}"; do
	med[$c]=$(printf '%s\n' ${times[$c]} | median)
done
echo "terraform $(terraform version | head -1 | awk '{print $2}'), $n namespaces, $runs runs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${configs[@]}"; do
	printf 'median %-10s %6s ms\n' "$c:" "${med[$c]}"
done
awk -v a="${med[nvme-many]}" -v b="${med[noop-many]}" 'BEGIN {printf "ratio many: %.2f (nvme / noop, goal <= 1.5)\n", a / b}'
awk -v a="${med[nvme-one]}" -v b="${med[noop-one]}" 'BEGIN {printf "ratio one:  %.2f (nvme / noop, goal <= 1.5)\n", a / b}'
awk -v a="${med[noop-many]}" -v b="${med[data]}" 'BEGIN {printf "floor: %.2f (noop many / terraform_data: any plugin resource)\n", a / b}'
if [[ ${PROFILE:-} == 1 ]]; then
	echo "CPU profiles: $work/profiles (go tool pprof -top <binary> $work/profiles/cpu-*.pprof)"
fi
