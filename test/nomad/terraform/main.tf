# The lab volume declared with the provider: `make nomad-e2e` applies this with
# the locally built terraform-provider-nvme (dev_overrides, no registry) and the
# e2e test renders the outputs into examples/nomad/volume.hcl.

terraform {
  required_providers {
    nvme = {
      source = "nvmeof/nvme"
    }
  }
}

provider "nvme" {
  defaults {
    ctrl_loss_tmo   = -1
    reconnect_delay = 2 # the lab's outage test wants the controller back quickly
  }
}

# nqn.2026-01.io.nvmeof.lab:two in the lab VM (test/lab/labtarget).
resource "nvme_connection" "lab" {
  traddr        = "127.0.0.1"
  subsystem_nqn = "nqn.2026-01.io.nvmeof.lab:two"

  namespaces = {
    lab = { nsid = 1, uuid = "33333333-3333-4333-8333-333333333333" }
  }
}

output "volume_context" {
  value = nvme_connection.lab.volume_contexts["lab"]
}

output "external_id" {
  value = nvme_connection.lab.external_ids["lab"]
}
