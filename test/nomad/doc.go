// Package nomade2e proves examples/nomad against a real Nomad agent and the
// real nvmeof-csi plugin, inside the lab VM (test/lab) with its nvmet
// target: the plugin job, a volume whose context comes from a real
// `terraform apply` of nvme_connection, a consumer that writes through
// stops, a SIGKILLed plugin and a 15 s target outage. `make nomad-e2e` runs
// it; `make demo` runs it with narration.
//
// The tests build only with the lab tag and run only inside the VM: they
// mount, start daemons and cut the target's port.
package nomade2e
