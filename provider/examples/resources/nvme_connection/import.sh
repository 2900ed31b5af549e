# The import id is the connection's settings, then ";name:settings" for
# each namespace, settings written as volume-context key=value pairs joined
# by commas (the nvmeof-csi plugin's keys; camelCase aliases work). Settings
# left out take the plugin's defaults, not the provider's defaults block.
# The resource's `id` is a valid first part.
terraform import nvme_connection.fleet \
  'traddr=192.0.2.10,nqn=nqn.2014-08.org.example:fleet,keep_alive_tmo=15;postgres:nsid=1,uuid=0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90;uploads:nsid=2'
