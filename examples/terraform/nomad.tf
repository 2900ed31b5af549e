# Registers the volumes with Nomad for the nvmeof CSI plugin. The plugin
# must be running (see examples/nomad); registration does not create
# anything on the target.

variable "nomad_address" {
  description = "Address of the Nomad API."
  type        = string
  default     = "http://127.0.0.1:4646"
}

variable "dhchap_secrets" {
  description = <<-EOT
    DH-HMAC-CHAP keys per volume name, for subsystems that authenticate hosts:
    { postgres = { dhchap_secret = "DHHC-1:01:...:", dhchap_ctrl_secret = "DHHC-1:01:...:" } }
    (dhchap_ctrl_secret optional). They reach the plugin as the volume's
    secrets; the nvme provider never sees them. Pass them from a secret store
    (TF_VAR_dhchap_secrets, a Vault data source), never in a committed file.
  EOT
  type        = map(map(string))
  default     = {}
  sensitive   = true
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
  # Stored by the Nomad provider in its state (marked sensitive): keep the
  # state in an encrypted backend, or register authenticated volumes with
  # `nomad volume register` instead (docs/nomad.md, "In-band authentication").
  secrets = lookup(var.dhchap_secrets, each.key, null)

  capability {
    access_mode     = "single-node-writer"
    attachment_mode = "file-system"
  }

  mount_options {
    fs_type = "ext4"
  }
}
