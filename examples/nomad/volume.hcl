# An NVMe/TCP namespace as a Nomad CSI volume: `nomad volume register volume.hcl`.
# With Terraform, nvme_connection's volume_contexts and external_ids fill in the
# same fields, one volume per namespace (see ../terraform).

id          = "pg-data"
name        = "pg-data"
type        = "csi"
plugin_id   = "nvmeof"
external_id = "nqn.2016-06.io.spdk:cnode1/nsid:1" # the namespace, whatever path reaches it

capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}

capability {
  access_mode     = "single-node-writer"
  attachment_mode = "block-device"
}

# Only for file-system attachments. The device is formatted only when it is
# blank; a file system already on it is never touched.
mount_options {
  fs_type     = "ext4" # or xfs
  mount_flags = ["noatime"]
}

context {
  # Where the subsystem is.
  traddr    = "192.0.2.10"
  trsvcid   = "4420"
  transport = "tcp"
  nqn       = "nqn.2016-06.io.spdk:cnode1"

  # Which namespace. uuid (or nguid) makes the plugin verify it: a target that
  # renumbered its namespaces can never hand this volume someone else's data.
  nsid = "1"
  uuid = "11111111-1111-4111-8111-111111111111"

  # How the kernel holds on to the target. These are the defaults, spelled out:
  # -1 reconnects forever, so an outage blocks I/O instead of failing it and a
  # file system never turns read-only; see docs/nomad.md for the trade-off.
  ctrl_loss_tmo   = "-1"
  reconnect_delay = "5"

  # Optional, left to the kernel when unset:
  # fast_io_fail_tmo = "30"   # fail I/O after 30 s while reconnecting goes on
  # keep_alive_tmo   = "5"
  # nr_io_queues     = "4"
  # queue_size       = "128"
  # hdr_digest       = "true"
  # data_digest      = "true"
  # host_iface       = "eth1" # leave through this interface
}
