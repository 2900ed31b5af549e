# The nvme part of the example: the fleet's reconnection policy and the
# volumes. CI runs exactly this file and ./volumes with the locally built
# provider (provider/example_test.go).

provider "nvme" {
  # One place for the fleet's policy: every nvme_connection that does not
  # set a value of its own gets these, for all its namespaces.
  defaults {
    ctrl_loss_tmo    = -1 # reconnect forever: a blip never turns a filesystem read-only
    reconnect_delay  = 5
    keep_alive_tmo   = 10
    fast_io_fail_tmo = 30 # fail I/O after 30 s so applications see the outage
  }
}

module "volumes" {
  source = "./volumes"

  target_address = var.target_address
  database_paths = var.database_paths
}

variable "target_address" {
  description = "Address of the NVMe/TCP target that exports the volumes."
  type        = string
  default     = "192.0.2.10"
}

variable "database_paths" {
  description = "Further addresses of the target for the databases subsystem, one path each; [] for a single path."
  type        = list(string)
  default     = ["198.51.100.10"]
}

output "volume_contexts" {
  description = "Volume contexts by volume name, as Nomad's nvmeof plugin receives them."
  value       = module.volumes.volume_contexts
}

output "external_ids" {
  description = "External ids by volume name."
  value       = module.volumes.external_ids
}
