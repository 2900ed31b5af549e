# A consumer of the volume: writes a line every second and reads it back.
# exec (or docker) tasks can consume CSI volumes; raw_exec tasks cannot.

variable "volume_id" {
  type    = string
  default = "pg-data"
}

job "nvme-app" {
  datacenters = ["*"]

  group "app" {
    volume "data" {
      type            = "csi"
      source          = var.volume_id
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }

    task "writer" {
      driver = "exec"

      volume_mount {
        volume      = "data"
        destination = "/data"
      }

      config {
        command = "/bin/sh"
        args = ["-c", <<-EOT
          set -e
          n=$(wc -l < /data/log 2>/dev/null || echo 0)
          echo "found $n lines"
          while true; do
            n=$((n + 1))
            echo "line $n $(date +%s)" >> /data/log
            sync /data/log
            tail -n 1 /data/log
            sleep 1
          done
        EOT
        ]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
