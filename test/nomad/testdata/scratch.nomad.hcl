# Block volumes per allocation: scratch[0] and scratch[1]. Each writes its
# index at the start of its device and reads it back.
job "nvme-scratch" {
  group "scratch" {
    count = 2

    volume "scratch" {
      type            = "csi"
      source          = "scratch"
      per_alloc       = true
      access_mode     = "single-node-writer"
      attachment_mode = "block-device"
    }

    task "fill" {
      driver = "exec"

      volume_mount {
        volume      = "scratch"
        destination = "/scratch"
      }

      config {
        command = "/bin/sh"
        args    = ["-c", "printf 'alloc %s\\n' \"$NOMAD_ALLOC_INDEX\" | dd of=/scratch bs=512 conv=sync,notrunc 2>/dev/null && echo \"read $(head -n 1 /scratch)\" && exec sleep 3600"]
      }
    }
  }
}
