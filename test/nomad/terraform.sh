#!/usr/bin/env bash
# Apply test/nomad/terraform with the locally built provider and write its
# outputs as JSON: terraform.sh WORKDIR OUTPUT.json
#
# dev_overrides points terraform at our build, so no `terraform init` and no
# registry; a fresh state each time, so the apply really plans and creates.
set -euo pipefail
work=$1 out=$2
root=$(cd "$(dirname "$0")/../.." && pwd)

mkdir -p "$work/tfbin" "$work/tf"
# NVME_PROVIDER names a provider binary built already (make nomad-e2e-binaries).
if [[ -x ${NVME_PROVIDER:-} ]]; then
	cp "$NVME_PROVIDER" "$work/tfbin/terraform-provider-nvme"
else
	(cd "$root" && CGO_ENABLED=0 ${GO:-go} build -trimpath -o "$work/tfbin/terraform-provider-nvme" ./provider/cmd/terraform-provider-nvme)
fi
cat >"$work/terraformrc" <<RC
provider_installation {
  dev_overrides {
    "nvmeof/nvme" = "$work/tfbin"
  }
  direct {}
}
RC
rm -f "$work/tf/"*.tf "$work/tf/terraform.tfstate"*
cp "$root/test/nomad/terraform/"*.tf "$work/tf/"

export TF_CLI_CONFIG_FILE="$work/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
echo "terraform: apply test/nomad/terraform with the local provider"
if ! terraform -chdir="$work/tf" apply -auto-approve -input=false -no-color >"$work/apply.log" 2>&1; then
	cat "$work/apply.log"
	exit 1
fi
grep -E '^(nvme_connection|Apply complete)' "$work/apply.log" || true
terraform -chdir="$work/tf" output -json >"$out"
test -s "$out"
