package provider

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// validateOutput is what `terraform validate -json` prints.
type validateOutput struct {
	Valid       bool                 `json:"valid"`
	Diagnostics []validateDiagnostic `json:"diagnostics"`
}

type validateDiagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail"`
	Range    *struct {
		Filename string `json:"filename"`
		Start    struct {
			Line int `json:"line"`
		} `json:"start"`
	} `json:"range"`
}

// TestValidateCLI: `terraform validate` refuses every bad value known in
// the configuration with the core's message, on the line of the attribute
// (a namespace's entry for its keys), the provider block's values included. What validation cannot know (values
// from variables, the provider's defaults, other resources) waits for the
// plan, which refuses it with the same message.
func TestValidateCLI(t *testing.T) {
	t.Parallel()
	for _, tt := range invalidCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCLI(t)
			c.write("main.tf", versionsTF+tt.config)
			out, _, _ := c.run("validate", "-json", "-no-color")
			var got validateOutput
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("decode terraform validate -json: %v\n%s", err, out)
			}
			if got.Valid {
				t.Fatalf("terraform validate accepted:\n%s", tt.config)
			}
			errs := slices.DeleteFunc(slices.Clone(got.Diagnostics), func(d validateDiagnostic) bool { return d.Severity != "error" })
			if len(errs) != 1 {
				t.Fatalf("want one error, got %+v", got.Diagnostics)
			}
			d := errs[0]
			summary := tt.summary()
			if d.Summary != summary || !tt.want.MatchString(d.Detail) {
				t.Fatalf("diagnostic %q: %q\nwant %q: %s", d.Summary, d.Detail, summary, tt.want)
			}
			lines := strings.Split(versionsTF+tt.config, "\n")
			if d.Range == nil || d.Range.Start.Line < 1 || d.Range.Start.Line > len(lines) {
				t.Fatalf("diagnostic without a usable range: %+v", d.Range)
			}
			line := lines[d.Range.Start.Line-1]
			if !tt.lineRegexp().MatchString(line) {
				t.Fatalf("diagnostic on line %d %q, want the line matching %s", d.Range.Start.Line, line, tt.lineRegexp())
			}
		})
	}
}

// TestValidateCLI_waitsForThePlan: values validation cannot know are
// accepted by `terraform validate` and refused by `terraform plan` with the
// core's message.
func TestValidateCLI_waitsForThePlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		want   string
	}{{
		name: "a value from a variable",
		config: `variable "delay" {
  default = 0
}
` + connection("test", `reconnect_delay = var.delay`),
		want: coreMessage(t, baseContext(map[string]string{"reconnect_delay": "0"}), "reconnect_delay"),
	}, {
		name: "a rule with the provider's default",
		config: `provider "nvme" {
  defaults {
    reconnect_delay = 30
  }
}
` + connection("test", `ctrl_loss_tmo = 10`),
		want: coreMessage(t, baseContext(map[string]string{"ctrl_loss_tmo": "10", "reconnect_delay": "30"}), "ctrl_loss_tmo"),
	}, {
		name:   "a second connection to the subsystem",
		config: connection("a", `namespaces = { a = { nsid = 1 } }`) + connection("b", `namespaces = { b = { nsid = 2 } }`),
		want:   "Merge them into one nvme_connection",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newCLI(t)
			c.write("main.tf", versionsTF+tt.config)
			c.must("validate", "-no-color")
			out, errOut, ok := c.run("plan", "-input=false", "-no-color")
			if ok {
				t.Fatalf("terraform plan accepted:\n%s\n%s", tt.config, out)
			}
			if got := strings.Join(strings.Fields(errOut), " "); !strings.Contains(got, tt.want) {
				t.Fatalf("terraform plan failed without %q:\n%s", tt.want, errOut)
			}
		})
	}
}

// coreMessage is the core's message for the one invalid setting in vc.
func coreMessage(t *testing.T, vc map[string]string, key string) string {
	t.Helper()
	_, err := nvme.ParseVolumeContext(vc)
	for _, fe := range nvme.AsFieldErrors(err) {
		if fe.Key == key {
			return fe.Error()
		}
	}
	t.Fatalf("the core does not reject %v for %s: %v", vc, key, err)
	return ""
}

// TestCLI_targetAndReplace: -target plans a subset (a duplicate outside it
// is not seen, and nothing inside it misfires), -replace plans a resource
// twice in one walk.
func TestCLI_targetAndReplace(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	two := connection("a", `namespaces = { a = { nsid = 1 } }`) +
		connection("b", `subsystem_nqn = "nqn.2014-08.org.example:vol2"`, `namespaces = { b = { nsid = 2 } }`)
	c.write("main.tf", versionsTF+two)
	c.must("apply", "-auto-approve", "-input=false", "-no-color")
	if out := c.must("plan", "-input=false", "-no-color", "-replace=nvme_connection.a"); !strings.Contains(out, "nvme_connection.a will be replaced, as requested") {
		t.Fatalf("-replace planned:\n%s", out)
	}
	c.must("apply", "-auto-approve", "-input=false", "-no-color", "-replace=nvme_connection.b")

	// A third connection to a's subsystem: refused in a full plan, not
	// seen by a plan that targets only b, and refused again when targeted
	// with a.
	dup := two + connection("dup", `namespaces = { c = { nsid = 3 } }`)
	c.write("main.tf", versionsTF+dup)
	if _, errOut, ok := c.run("plan", "-input=false", "-no-color"); ok || !strings.Contains(errOut, "Subsystem declared twice") {
		t.Fatalf("a full plan did not refuse the duplicate:\n%s", errOut)
	}
	c.must("plan", "-input=false", "-no-color", "-target=nvme_connection.b")
	c.must("plan", "-input=false", "-no-color", "-target=nvme_connection.dup")
	if _, errOut, ok := c.run("plan", "-input=false", "-no-color", "-target=nvme_connection.a", "-target=nvme_connection.dup"); ok ||
		!strings.Contains(errOut, "Subsystem declared twice") {
		t.Fatalf("a plan targeting both did not refuse the duplicate:\n%s", errOut)
	}
}

// TestCLI_stateOfTheFirstSchema: a state written by the provider before
// namespaces existed (one namespace per resource, nsid at the top) plans as
// an in-place update to the configuration that says the same in the new
// shape; nothing is replaced and nothing fails to decode.
func TestCLI_stateOfTheFirstSchema(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.write("main.tf", versionsTF+connection("pg", `namespaces = { pg = { nsid = 1 } }`))
	c.write("terraform.tfstate", `{
  "version": 4,
  "terraform_version": "1.11.4",
  "serial": 1,
  "lineage": "3f1e0c3a-7f7e-4c1c-9a43-0d6b7a1f3c2e",
  "outputs": {},
  "resources": [{
    "mode": "managed",
    "type": "nvme_connection",
    "name": "pg",
    "provider": "provider[\"registry.terraform.io/nvmeof/nvme\"]",
    "instances": [{
      "schema_version": 0,
      "attributes": {
        "connect_args": null, "ctrl_loss_tmo": -1, "data_digest": false,
        "external_id": "`+testNQN+`/nsid:1", "fabrics_options": null, "fast_io_fail_tmo": null,
        "hdr_digest": false, "host_iface": null, "host_traddr": null,
        "id": "transport=tcp,traddr=`+testAddr+`,trsvcid=4420,nqn=`+testNQN+`,nsid=1",
        "keep_alive_tmo": null, "namespace_nguid": null, "namespace_uuid": null, "nr_io_queues": null,
        "nsid": 1, "queue_size": null, "reconnect_delay": 5, "subsystem_nqn": "`+testNQN+`", "tos": null,
        "traddr": "`+testAddr+`", "transport": "tcp", "trsvcid": "4420",
        "volume_context": {"ctrl_loss_tmo": "-1", "nqn": "`+testNQN+`", "nsid": "1", "reconnect_delay": "5",
          "traddr": "`+testAddr+`", "transport": "tcp", "trsvcid": "4420"}
      },
      "sensitive_attributes": []
    }]
  }]
}
`)
	out := c.must("plan", "-input=false", "-no-color")
	if !strings.Contains(out, "nvme_connection.pg will be updated in-place") || !strings.Contains(out, "0 to add, 1 to change, 0 to destroy") {
		t.Fatalf("the first schema's state plans otherwise:\n%s", out)
	}
	c.must("apply", "-auto-approve", "-input=false", "-no-color")
	if out := c.must("plan", "-input=false", "-no-color", "-detailed-exitcode"); !strings.Contains(out, "No changes") {
		t.Fatalf("after the update:\n%s", out)
	}
}
