terraform {
  required_providers {
    nvme = {
      source = "nvmeof/nvme"
    }
  }
}

variable "target_address" {
  type = string
}

resource "nvme_connection" "postgres" {
  traddr        = var.target_address
  subsystem_nqn = "nqn.2014-08.org.example:fleet"

  fast_io_fail_tmo = -1

  namespaces = {
    postgres = { nsid = 1, uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90" }
  }
}

resource "nvme_connection" "uploads" {
  traddr        = var.target_address
  subsystem_nqn = "nqn.2014-08.org.example:fleet"

  namespaces = {
    uploads = { nsid = 2 }
  }
}
