terraform {
  # provider::nvme::volume_context and the nvme provider's plan-time
  # outputs need Terraform 1.8 or later.
  required_version = ">= 1.8"

  required_providers {
    nvme = {
      source = "nvmeof/nvme"
    }
    nomad = {
      source  = "hashicorp/nomad"
      version = ">= 2.0"
    }
  }
}
