# A job that only claims a volume: its allocation fails when the plugin
# refuses the volume.
variable "volume_id" {
  type = string
}

job "claim" {
  group "g" {
    volume "v" {
      type            = "csi"
      source          = var.volume_id
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }

    task "t" {
      driver = "exec"

      volume_mount {
        volume      = "v"
        destination = "/data"
      }

      config {
        command = "/bin/true"
      }
    }
  }
}
