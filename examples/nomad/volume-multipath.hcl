# A namespace reached through two target ports, each from its own network
# interface: `nomad volume register volume-multipath.hcl`. The plugin
# connects one controller per portal; the kernel's native multipath puts
# both paths under one device and moves I/O to the other path in
# milliseconds when one fails. See docs/nomad.md ("Several portals").

id          = "pg-data"
name        = "pg-data"
type        = "csi"
plugin_id   = "nvmeof"
external_id = "nqn.2016-06.io.spdk:cnode1/uuid:11111111-1111-4111-8111-111111111111"

capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}

mount_options {
  fs_type     = "ext4"
  mount_flags = ["noatime"]
}

context {
  nqn  = "nqn.2016-06.io.spdk:cnode1"
  nsid = "1"
  uuid = "11111111-1111-4111-8111-111111111111"

  # Portal 1: target port A, left through eth1.
  traddr     = "192.0.2.10"
  trsvcid    = "4420"
  host_iface = "eth1"

  # Portal 2: target port B, left through eth2. Further portals take _3 to _8.
  traddr_2     = "198.51.100.10"
  trsvcid_2    = "4420"
  host_iface_2 = "eth2"

  # Every path keeps reconnecting on its own; the volume carries on over the
  # others meanwhile.
  ctrl_loss_tmo   = "-1"
  reconnect_delay = "5"

  # How native multipath spreads I/O over the live paths: numa (the kernel's
  # default), round-robin, or queue-depth on kernels that offer it.
  iopolicy = "round-robin"
}
