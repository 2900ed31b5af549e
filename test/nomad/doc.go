// Package nomade2e is the Nomad story in the lab VM (test/lab): the real
// nvmeof-csi plugin on the real kernel with its nvmet target, driven the
// way Nomad 1.11's client drives it, from the files users have
// (examples/nomad and the output of a real `terraform apply` of
// nvme_connection).
//
// TestNomadStory runs it with the project's Nomad-faithful driver
// (./nomadclient) in Nomad's place: `make nomad-e2e` (part of `make test`)
// and `make demo`. TestRealNomadStory runs the same story with a real
// Nomad agent that the person running it supplies (`make nomad-e2e-real
// NOMAD=/path/to/nomad`, or `make demo` with nomad on PATH); Nomad is
// BUSL-licensed and never built or fetched by the project, so CI cannot
// run it and nothing relies on it alone.
//
// The tests build only with the lab tag and run only inside the VM: they
// mount, start daemons and cut the target's port.
package nomade2e
