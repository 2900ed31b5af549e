# The shape of the first examples/terraform, with the nvme_connection
# schema of today: two connections to one subsystem, one of them with a
# setting of its own. The plan must refuse it (TestAccExample_firstShape).

terraform {
  required_providers {
    nvme = {
      source = "nvmeof/nvme"
    }
  }
}

provider "nvme" {
  defaults {
    ctrl_loss_tmo    = -1
    reconnect_delay  = 5
    keep_alive_tmo   = 10
    fast_io_fail_tmo = 30
  }
}

module "volumes" {
  source = "./volumes"

  target_address = "192.0.2.10"
}
