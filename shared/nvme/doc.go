// Package nvme is the connection model shared by the CSI plugin and the
// Terraform provider: the NVMe/TCP target and host model, the kernel's
// reconnection parameters with their validation, the volume-context codec,
// and the two renderings a connection has on Linux: the option string for
// /dev/nvme-fabrics and the nvme-cli argument vector.
//
// It is pure: standard library only, no I/O. The provider links it and
// nothing of the kernel side, which lives in package kernel below it.
//
// Every value that reaches the kernel passes through Validate first. The
// kernel splits its option string on ',' and '\n' without any escaping, so a
// value holding either would inject options of its own; such values are
// refused here, before anything is rendered.
package nvme
