# The import id is a volume context written as key=value pairs joined by
# commas, with the keys of the nvmeof-csi plugin (camelCase aliases work).
# Settings left out take the plugin's defaults, not the provider's defaults
# block. A resource's own `id` is a valid import id.
terraform import nvme_connection.postgres \
  'traddr=192.0.2.10,nqn=nqn.2014-08.org.example:postgres,nsid=1,uuid=0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90,keep_alive_tmo=15'
