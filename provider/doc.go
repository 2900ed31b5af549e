// Package provider is the Terraform provider for nvmeof: the nvme_connection
// resource and the volume_context function. It validates and renders volume
// contexts with shared/nvme only, so a value Terraform accepts is a value the
// CSI plugin accepts, with the same error text.
package provider
