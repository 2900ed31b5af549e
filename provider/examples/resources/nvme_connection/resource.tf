# One connection per subsystem, with every namespace of it that is a volume.
resource "nvme_connection" "fleet" {
  traddr        = "192.0.2.10"
  subsystem_nqn = "nqn.2014-08.org.example:fleet"

  # Connection settings are the subsystem's: the kernel keeps one set per
  # controller, for all its namespaces. Unset ones come from the provider's
  # defaults block, else from the plugin's defaults.
  keep_alive_tmo = 15

  namespaces = {
    postgres = { nsid = 1, uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90" }
    uploads  = { nsid = 2 }
  }
}

# Feed the computed values to Nomad's volume registration, one volume per
# namespace: the names are known at plan time, so for_each works.
output "volume_contexts" {
  value = nvme_connection.fleet.volume_contexts
}

output "external_ids" {
  value = nvme_connection.fleet.external_ids
}
