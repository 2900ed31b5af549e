package examplecheck_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/test/nomad/examplecheck"
)

const volume = `id        = "v1"
type      = "csi"
plugin_id = "nvmeof"

capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}

context {
  traddr = "192.0.2.10"
  nqn    = "nqn.2026-01.io.example:one"
  nsid   = "1"
}
`

const app = `job "app" {
  group "g" {
    volume "data" {
      type            = "csi"
      source          = "v1"
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }

    task "t" {
      driver = "exec"

      volume_mount {
        volume      = "data"
        destination = "/data"
      }
    }
  }
}
`

const rawPlugin = `job "plugin" {
  type = "system"

  group "node" {
    task "plugin" {
      driver = "raw_exec"

      csi_plugin {
        id   = "nvmeof"
        type = "node"
      }
    }
  }
}
`

func TestExamplesPass(t *testing.T) {
	results, err := examplecheck.Check("../../../examples/nomad")
	if err != nil {
		t.Fatal(err)
	}
	if err := examplecheck.Failed(results); err != nil {
		for _, r := range results {
			t.Log(r.File, r.Problems)
		}
		t.Fatal(err)
	}
	if len(results) < 4 {
		t.Errorf("%d files checked", len(results))
	}
}

func TestCheckFindsProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"good", map[string]string{"v.hcl": volume, "app.nomad.hcl": app}, nil},
		{"unformatted", map[string]string{"v.hcl": strings.Replace(volume, "type      =", "type =", 1), "app.nomad.hcl": app},
			[]string{`nomad fmt: not in canonical format: line 2 is "type = \"csi\"", nomad fmt writes "type      = \"csi\""`}},
		{"syntax", map[string]string{"v.hcl": volume + "}\n", "app.nomad.hcl": app}, []string{"nomad fmt: "}},
		{"bad context", map[string]string{"v.hcl": strings.Replace(volume, `nsid   = "1"`, `nsid   = "0"`, 1), "app.nomad.hcl": app},
			[]string{"volume_context: invalid nsid", `group "g" volume "data": the plugin would refuse the claim: volume_context: invalid nsid`}},
		{"no access mode", map[string]string{"v.hcl": volume, "app.nomad.hcl": strings.Replace(app, "      access_mode     = \"single-node-writer\"\n", "", 1)},
			[]string{`group "g": volume "data": access_mode is required for CSI volumes`}},
		{"raw_exec consumer", map[string]string{"v.hcl": volume, "app.nomad.hcl": strings.Replace(app, `"exec"`, `"raw_exec"`, 1)},
			[]string{`group "g": no task supports CSI`}},
		{"unknown source", map[string]string{"v.hcl": volume, "app.nomad.hcl": strings.Replace(app, `"v1"`, `"v2"`, 1)},
			[]string{`group "g" volume "data": source "v2" names no volume file of the directory`}},
		{"a file system for many writers", map[string]string{"v.hcl": volume, "app.nomad.hcl": strings.Replace(app, `"single-node-writer"`, `"multi-node-multi-writer"`, 1)},
			[]string{"the plugin would refuse the claim: access mode MULTI_NODE_MULTI_WRITER needs block attachment"}},
		{"raw_exec plugin with the default base dir", map[string]string{"p.nomad.hcl": rawPlugin},
			[]string{`under raw_exec, stage_publish_base_dir "/local/csi" must be <data_dir>/client/csi/node/nvmeof`}},
		{"raw_exec plugin with the host path", map[string]string{"p.nomad.hcl": strings.NewReplacer(`id   = "nvmeof"`, `id                     = "nvmeof"`, `type = "node"`,
			"type                   = \"node\"\n        stage_publish_base_dir = \"/opt/nomad/data/client/csi/node/nvmeof\"").Replace(rawPlugin)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			results, err := examplecheck.Check(dir)
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, r := range results {
				all = append(all, r.Problems...)
			}
			if len(tc.want) == 0 && len(all) > 0 {
				t.Fatalf("problems in good files: %q", all)
			}
			for _, w := range tc.want {
				found := false
				for _, p := range all {
					found = found || strings.Contains(p, w)
				}
				if !found {
					t.Errorf("no problem says %q; got %q", w, all)
				}
			}
			if (examplecheck.Failed(results) != nil) != (len(tc.want) > 0) {
				t.Errorf("Failed = %v with problems %q", examplecheck.Failed(results), all)
			}
		})
	}
}
