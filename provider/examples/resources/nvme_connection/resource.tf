resource "nvme_connection" "postgres" {
  traddr         = "192.0.2.10"
  subsystem_nqn  = "nqn.2014-08.org.example:postgres"
  nsid           = 1
  namespace_uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"

  # Overrides the provider's defaults block for this volume only.
  keep_alive_tmo = 15
}

# Feed the computed values to Nomad's volume registration.
output "postgres_context" {
  value = nvme_connection.postgres.volume_context
}

output "postgres_external_id" {
  value = nvme_connection.postgres.external_id
}
