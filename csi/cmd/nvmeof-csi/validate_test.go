package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `id = "v1"
type = "csi"
plugin_id = "nvmeof"
capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}
secrets {
  dhchap_secret = "DHHC-1:00:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0ISG5TJxJ:"
}
context {
  traddr = "192.0.2.10"
  nqn    = "nqn.2026-01.io.example:one"
  nsid   = "1"
}
`
	goodFile := write("good.hcl", good)
	typo := write("typo.hcl", strings.Replace(strings.Replace(good, "nsid", "nsdi", 1), "plugin_id", "plugin_di", 1))
	broken := write("broken.hcl", "id = \n")
	tests := []struct {
		name string
		args []string
		code int
		want []string
		not  []string
	}{
		{"the example", []string{"../../../examples/nomad/volume.hcl"}, 0,
			[]string{`volume "pg-data"`, "ok       capability single-node-writer/file-system: ext4, 1 mount flag(s)",
				"ok       capability single-node-writer/block-device", "namespace uuid:11111111-1111-4111-8111-111111111111", "volume.hcl: OK"}, nil},
		{"a good file", []string{goodFile}, 0, []string{"ok       secrets: dhchap_secret", "good.hcl: OK"}, []string{"c2VjcmV0"}},
		{"typos", []string{goodFile, typo}, 1, []string{
			`problem  key plugin_di: is no field of a Nomad CSI volume: nomad volume register drops it without a word (did you mean "plugin_id"?)`,
			"problem  plugin_id: is required",
			`problem  volume_context: invalid nsdi (value redacted): is not a known volume context key (did you mean "nsid"?)`,
			"typo.hcl: 3 problem(s)", "1 of 2 files have problems",
		}, []string{"c2VjcmV0"}},
		{"unparsable", []string{broken}, 1, []string{"broken.hcl: cannot be read as Nomad reads it"}, nil},
		{"missing file", []string{filepath.Join(dir, "none.hcl")}, 1, []string{"none.hcl: cannot be read", "no such file"}, nil},
		{"no file", nil, 2, []string{"usage: nvmeof-csi validate FILE..."}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"validate"}, tc.args...), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("output shows %q:\n%s", n, out)
				}
			}
		})
	}
}
