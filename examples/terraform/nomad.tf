# Registers the volumes with Nomad for the nvmeof CSI plugin. The plugin
# must be running (see examples/nomad); registration does not create
# anything on the target.

variable "nomad_address" {
  description = "Address of the Nomad API."
  type        = string
  default     = "http://127.0.0.1:4646"
}

provider "nomad" {
  address = var.nomad_address
}

resource "nomad_csi_volume_registration" "volume" {
  for_each = module.volumes.volume_contexts

  plugin_id   = "nvmeof"
  volume_id   = each.key
  name        = each.key
  external_id = module.volumes.external_ids[each.key]
  context     = each.value

  capability {
    access_mode     = "single-node-writer"
    attachment_mode = "file-system"
  }

  mount_options {
    fs_type = "ext4"
  }
}
