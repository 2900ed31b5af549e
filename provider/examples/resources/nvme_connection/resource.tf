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

# A subsystem reached through two target ports, each from its own network
# interface: the plugin connects one controller per portal, and native NVMe
# multipath on the node moves I/O to the other path when one fails.
resource "nvme_connection" "replicated" {
  traddr        = "192.0.2.20"
  host_iface    = "eth1"
  subsystem_nqn = "nqn.2014-08.org.example:replicated"

  additional_portals = [
    { traddr = "198.51.100.20", host_iface = "eth2" },
  ]
  iopolicy = "round-robin"

  namespaces = {
    ledger = { uuid = "5b2c9e0d-7a41-4f63-8d1e-3c6a9b2f7e15" }
  }
}

# Feed the computed values to Nomad's volume registration, one volume per
# namespace: the names are known at plan time, so for_each works.
output "volume_contexts" {
  value = merge(nvme_connection.fleet.volume_contexts, nvme_connection.replicated.volume_contexts)
}

output "external_ids" {
  value = merge(nvme_connection.fleet.external_ids, nvme_connection.replicated.external_ids)
}
