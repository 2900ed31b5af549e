// A separate module that builds a real Nomad for the lab's end-to-end tests.
// Nomad's own go.mod carries replace directives (repeated here) and points
// its api at a nested module the module zip lacks, so `go install
// github.com/hashicorp/nomad@v1.11.3` cannot work; see ../../test/lab.
// Nomad is BUSL-licensed: it is built for tests and never redistributed.
module github.com/nvmeof/nvmeof/tools/nomad

go 1.25.8

require (
	github.com/hashicorp/nomad v1.11.3
	github.com/hashicorp/nomad/api v0.0.0-20260408063511-b0f552dbe971
)

replace (
	github.com/Microsoft/go-winio => github.com/endocrimes/go-winio v0.4.13-0.20190628114223-fb47a8b41948
	github.com/hashicorp/hcl => github.com/hashicorp/hcl v1.0.1-nomad-1
)
