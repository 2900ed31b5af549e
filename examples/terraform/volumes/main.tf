# Two namespaces of one subsystem. Reconnection settings come from the
# provider's defaults block unless a volume sets its own.

terraform {
  required_providers {
    nvme = {
      source = "nvmeof/nvme"
    }
  }
}

variable "target_address" {
  description = "Address of the NVMe/TCP target."
  type        = string
}

resource "nvme_connection" "postgres" {
  traddr         = var.target_address
  subsystem_nqn  = "nqn.2014-08.org.example:fleet"
  nsid           = 1
  namespace_uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"

  # A database would rather wait for the target than see I/O errors.
  fast_io_fail_tmo = -1
}

resource "nvme_connection" "uploads" {
  traddr        = var.target_address
  subsystem_nqn = "nqn.2014-08.org.example:fleet"
  nsid          = 2
}

output "volume_contexts" {
  description = "Volume contexts by volume name."
  value = {
    postgres = nvme_connection.postgres.volume_context
    uploads  = nvme_connection.uploads.volume_context
  }
}

output "external_ids" {
  description = "External ids by volume name."
  value = {
    postgres = nvme_connection.postgres.external_id
    uploads  = nvme_connection.uploads.external_id
  }
}
