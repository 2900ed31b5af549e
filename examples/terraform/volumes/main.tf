# The volumes: namespaces of two subsystems on one target, one of them
# reached over two paths.
#
# One nvme_connection per subsystem. The Linux kernel keeps one controller
# per host and subsystem, with one set of connection settings, so those
# settings are declared once per connection, for all its namespaces. A
# volume that needs other settings lives in another subsystem on the target.

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

variable "database_paths" {
  description = "Further addresses of the databases subsystem (another target port, another switch): one more path each."
  type        = list(string)
}

# A database would rather wait for the target than see I/O errors, so its
# subsystem keeps I/O queued for as long as the kernel reconnects. It is
# reached over two paths: the plugin connects one controller per portal and
# native NVMe multipath on the node moves I/O to the other path when one
# fails, so a cable or switch is no longer an outage.
resource "nvme_connection" "databases" {
  traddr        = var.target_address
  subsystem_nqn = "nqn.2014-08.org.example:databases"

  additional_portals = [for addr in var.database_paths : { traddr = addr }]
  iopolicy           = "round-robin"

  fast_io_fail_tmo = -1

  namespaces = {
    postgres = { nsid = 1, uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90" }
  }
}

# Everything else follows the fleet's policy from the provider block.
resource "nvme_connection" "fleet" {
  traddr        = var.target_address
  subsystem_nqn = "nqn.2014-08.org.example:fleet"

  namespaces = {
    uploads = { nsid = 1 }
    logs    = { nsid = 2 }
  }
}

locals {
  connections = [nvme_connection.databases, nvme_connection.fleet]
  # Names become Nomad volume ids: merge() would silently keep only one of
  # two namespaces of the same name, so the outputs check there are none.
  names = flatten([for c in local.connections : keys(c.namespaces)])
}

output "volume_contexts" {
  description = "Volume contexts by volume name."
  value       = merge([for c in local.connections : c.volume_contexts]...)

  precondition {
    condition     = length(distinct(local.names)) == length(local.names)
    error_message = "Two connections have a namespace of the same name; names become Nomad volume ids and must be unique."
  }
}

output "external_ids" {
  description = "External ids by volume name."
  value       = merge([for c in local.connections : c.external_ids]...)
}
