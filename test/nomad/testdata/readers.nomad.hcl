# Two readers of one volume on one node: the same usage, so one staging
# path; each allocation reads the app's log every second.
variable "volume_id" {
  type = string
}

job "nvme-readers" {
  group "readers" {
    count = 2

    volume "data" {
      type            = "csi"
      source          = var.volume_id
      access_mode     = "multi-node-reader-only"
      attachment_mode = "file-system"
      read_only       = true
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
