# The nvmeof-csi node plugin for clients without Docker, under raw_exec.
#
# raw_exec runs the plugin directly on the host, but Nomad still hands it the
# container-view paths of the staging and publish directories. Setting
# stage_publish_base_dir to the host path Nomad uses for this plugin,
# <client data_dir>/client/csi/node/<plugin id>, makes the two views the same
# path, so mounts land where Nomad looks for them. Enable raw_exec in the
# client config: plugin "raw_exec" { config { enabled = true } }.

variable "plugin_path" {
  type        = string
  description = "Where the nvmeof-csi binary is on every client."
  default     = "/usr/local/bin/nvmeof-csi"
}

variable "nomad_data_dir" {
  type        = string
  description = "The clients' Nomad data_dir."
  default     = "/opt/nomad/data"
}

variable "state_dir" {
  type        = string
  description = "Where the plugin records what it connected; must survive restarts."
  default     = "/var/lib/nvmeof-csi"
}

variable "metrics_addr" {
  type        = string
  description = "Address for Prometheus metrics; empty turns them off."
  default     = "127.0.0.1:9810"
}

job "nvmeof-csi" {
  type        = "system"
  datacenters = ["*"]
  priority    = 90

  update {
    max_parallel     = 1
    min_healthy_time = "15s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  group "node" {
    restart {
      attempts = 10
      interval = "5m"
      delay    = "5s"
      mode     = "delay"
    }

    task "plugin" {
      driver = "raw_exec"

      config {
        command = var.plugin_path
        args = [
          "--endpoint=${CSI_ENDPOINT}",
          "--state-dir=${var.state_dir}",
          "--metrics-addr=${var.metrics_addr}",
        ]
      }

      csi_plugin {
        id                     = "nvmeof"
        type                   = "node"
        mount_dir              = "/csi"
        stage_publish_base_dir = "${var.nomad_data_dir}/client/csi/node/nvmeof"
        health_timeout         = "30s"
      }

      kill_timeout = "45s"

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
