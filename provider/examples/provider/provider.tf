terraform {
  required_providers {
    nvme = {
      source = "nvmeof/nvme"
    }
  }
}

provider "nvme" {
  # The node's identity, as in /etc/nvme on the Nomad client. Only needed
  # to render fabrics_options and connect_args for review.
  host_nqn = "nqn.2014-08.org.nvmexpress:uuid:6b1a5b8e-2c1f-4a5e-9d3c-1f2e3d4c5b6a"
  host_id  = "6b1a5b8e-2c1f-4a5e-9d3c-1f2e3d4c5b6a"

  # The fleet's reconnection policy, for every nvme_connection that does
  # not set its own.
  defaults {
    ctrl_loss_tmo    = -1
    reconnect_delay  = 5
    fast_io_fail_tmo = 30
  }
}
