# The nvmeof-csi node plugin on every client, in a privileged container.
#
# The Docker driver needs, in the client's plugin "docker" config:
#   allow_privileged = true      (the plugin mounts, and writes /dev/nvme-fabrics)
#   volumes { enabled = true }   (for the host bind mounts below)
# and every client needs the nvme-tcp kernel module loaded (modprobe nvme-tcp, or
# /etc/modules-load.d/nvme-tcp.conf) and a stable /etc/nvme/hostnqn + hostid.

variable "image" {
  type        = string
  description = "The nvmeof-csi container image."
  default     = "nvmeof/nvmeof-csi:latest"
}

variable "metrics_port" {
  type        = number
  description = "Host port for Prometheus metrics (the task runs in the host's network)."
  default     = 9810
}

job "nvmeof-csi" {
  type        = "system"
  datacenters = ["*"]
  priority    = 90 # storage comes before the workloads that need it

  # One node at a time: a node whose plugin is restarting cannot stage new
  # volumes, but its running volumes keep working (the kernel holds them).
  update {
    max_parallel     = 1
    min_healthy_time = "15s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  group "node" {
    # A storage daemon retries forever rather than giving up on a node.
    restart {
      attempts = 10
      interval = "5m"
      delay    = "5s"
      mode     = "delay"
    }

    network {
      port "metrics" {
        static = var.metrics_port
      }
    }

    task "plugin" {
      driver = "docker"

      config {
        image        = var.image
        privileged   = true
        network_mode = "host"
        ports        = ["metrics"]
        args = [
          "--endpoint=${CSI_ENDPOINT}",
          "--state-dir=/var/lib/nvmeof-csi",
          "--metrics-addr=${NOMAD_ADDR_metrics}",
          "--log-json",
        ]

        # Device nodes of namespaces appear after the container starts.
        mount {
          type   = "bind"
          source = "/dev"
          target = "/dev"
        }
        # Controllers, namespaces and their reconnection parameters.
        mount {
          type   = "bind"
          source = "/sys"
          target = "/sys"
        }
        # The host's identity: the same hostnqn/hostid as nvme-cli uses, so
        # targets' host ACLs see one host.
        mount {
          type     = "bind"
          source   = "/etc/nvme"
          target   = "/etc/nvme"
          readonly = true
        }
        # What the plugin connected, so a restarted plugin (or a SIGKILLed
        # one) reconciles instead of forgetting.
        mount {
          type   = "bind"
          source = "/var/lib/nvmeof-csi"
          target = "/var/lib/nvmeof-csi"
        }
      }

      csi_plugin {
        id             = "nvmeof"
        type           = "node"
        mount_dir      = "/csi"
        health_timeout = "30s"
      }

      # SIGTERM drains RPCs in flight (a mkfs can take a while).
      kill_timeout = "45s"

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
