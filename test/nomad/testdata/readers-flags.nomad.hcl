# The readers again, with mount_options in the group volume block.
variable "volume_id" {
  type = string
}

job "nvme-readers-flags" {
  group "readers" {
    count = 2

    volume "data" {
      type            = "csi"
      source          = var.volume_id
      access_mode     = "multi-node-reader-only"
      attachment_mode = "file-system"
      read_only       = true

      # A group mount_options block: every allocation holds its own copy,
      # and Nomad's usage tracker compares the pointers.
      mount_options {
        mount_flags = ["noatime"]
      }
    }

    task "reader" {
      driver = "exec"

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      config {
        command = "/bin/sh"
        args    = ["-c", "while true; do echo \"lines $(wc -l < /data/log)\"; sleep 1; done"]
      }
    }
  }
}
