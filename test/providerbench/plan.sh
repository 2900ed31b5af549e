#!/usr/bin/env bash
# plan.sh: time `terraform plan` of N nvme_connection resources against N
# terraform_data resources (Terraform's built-in no-op resource), on the
# same machine in the same run, alternating so drift hits both alike.
# Prints every run, the medians and the ratio nvme/terraform_data.
#
# usage: provider/bench/plan.sh [N [RUNS]]   (defaults 500 and 7)
# env:   PROVIDER_BIN  a built terraform-provider-nvme (else built here)
#        WORK          scratch directory (default .cache/provider/bench)
set -euo pipefail

n=${1:-500}
runs=${2:-7}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-$root/.cache/provider/bench}
rm -rf "$work"
mkdir -p "$work/plugins" "$work/nvme" "$work/data" "$work/noop"

if [[ -n ${PROVIDER_BIN:-} ]]; then
	cp "$PROVIDER_BIN" "$work/plugins/terraform-provider-nvme"
else
	(cd "$root" && go build -trimpath -o "$work/plugins/terraform-provider-nvme" ./provider/cmd/terraform-provider-nvme)
fi
(cd "$root" && go build -trimpath -o "$work/plugins/terraform-provider-noop" ./provider/bench/noop)

cat >"$work/terraformrc" <<CFG
provider_installation {
  dev_overrides {
    "nvmeof/nvme" = "$work/plugins"
    "nvmeof/noop" = "$work/plugins"
  }
  direct {}
}
CFG

cat >"$work/nvme/main.tf" <<TF
terraform {
  required_providers {
    nvme = { source = "nvmeof/nvme" }
  }
}

provider "nvme" {
  defaults {
    ctrl_loss_tmo   = 600
    reconnect_delay = 10
  }
}

resource "nvme_connection" "bench" {
  count          = $n
  traddr         = "192.0.2.10"
  subsystem_nqn  = "nqn.2014-08.org.example:bench"
  nsid           = count.index + 1
  keep_alive_tmo = 30
}
TF

cat >"$work/data/main.tf" <<TF
resource "terraform_data" "bench" {
  count = $n
  input = {
    traddr = "192.0.2.10"
    nsid   = count.index + 1
  }
}
TF

cat >"$work/noop/main.tf" <<TF
terraform {
  required_providers {
    noop = { source = "nvmeof/noop" }
  }
}

resource "noop_thing" "bench" {
  count  = $n
  traddr = "192.0.2.10"
  nsid   = count.index + 1
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

# One unmeasured plan each: page cache, plugin start-up paths.
plan_ms "$work/nvme" >/dev/null
plan_ms "$work/data" >/dev/null
plan_ms "$work/noop" >/dev/null

nvme_times=() data_times=() noop_times=()
for ((i = 1; i <= runs; i++)); do
	nvme_times+=("$(plan_ms "$work/nvme")")
	data_times+=("$(plan_ms "$work/data")")
	noop_times+=("$(plan_ms "$work/noop")")
	echo "run $i: nvme_connection ${nvme_times[-1]} ms, terraform_data ${data_times[-1]} ms, noop_thing ${noop_times[-1]} ms"
done

nvme_median=$(printf '%s\n' "${nvme_times[@]}" | median)
data_median=$(printf '%s\n' "${data_times[@]}" | median)
noop_median=$(printf '%s\n' "${noop_times[@]}" | median)
echo "terraform $(terraform version | head -1 | awk '{print $2}'), $n resources, $runs runs"
echo "median nvme_connection: $nvme_median ms"
echo "median terraform_data:  $data_median ms"
echo "median noop_thing:      $noop_median ms"
awk -v a="$nvme_median" -v b="$data_median" 'BEGIN {printf "ratio: %.2f (goal <= 1.5)\n", a / b}'
awk -v a="$noop_median" -v b="$data_median" 'BEGIN {printf "floor: %.2f (noop_thing / terraform_data: any plugin resource)\n", a / b}'
