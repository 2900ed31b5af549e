// Package kernel is the Linux side of shared/nvme: the sysfs model of
// controllers, subsystems and namespaces, the connector that creates,
// adopts, tunes and deletes controllers (through /dev/nvme-fabrics or
// nvme-cli), namespace resolution and volume health. Only the plugin and
// the lab import it; the Terraform provider never links it.
package kernel
