package jobspec_test

import (
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/test/nomad/jobspec"
)

func TestValidate(t *testing.T) {
	const tmpl = `
job "j" {
  type = "%TYPE%"
  group "g" {
    count = %COUNT%
    %GROUP%
    volume "v" {
      type   = "csi"
      source = "%SOURCE%"
      %VOLUME%
    }
    task "t" {
      driver = "exec"
      %TASK%
    }
  }
}
`
	const modes = "access_mode = \"single-node-writer\"\nattachment_mode = \"file-system\"\n"
	tests := []struct {
		name                      string
		typ, count, group, volume string
		task, source              string
		want                      []string
	}{
		{name: "good", volume: modes},
		{name: "no modes", want: []string{`group "g": volume "v": access_mode is required for CSI volumes`, "attachment_mode is required for CSI volumes"}},
		{name: "unknown modes", volume: "access_mode = \"single\"\nattachment_mode = \"files\"\n",
			want: []string{`access_mode "single": must be one of`, `attachment_mode "files": must be one of`}},
		{name: "mount_options with block", volume: "access_mode = \"single-node-writer\"\nattachment_mode = \"block-device\"\nmount_options {\n fs_type = \"ext4\"\n}\n",
			want: []string{"mount_options are not allowed with attachment_mode block-device"}},
		{name: "reader without read_only", volume: "access_mode = \"multi-node-reader-only\"\nattachment_mode = \"file-system\"\n",
			want: []string{"access_mode multi-node-reader-only requires read_only = true"}},
		{name: "count 2 single-node", count: "2", volume: modes,
			want: []string{"access_mode single-node-writer allows one reader or writer, and the group has count = 2"}},
		{name: "count 2 per_alloc", count: "2", volume: modes + "per_alloc = true\n"},
		{name: "count 2 multi-node readers", count: "2", volume: "access_mode = \"multi-node-reader-only\"\nattachment_mode = \"file-system\"\nread_only = true\n"},
		{name: "count 2 one writer", count: "2", volume: "access_mode = \"multi-node-single-writer\"\nattachment_mode = \"block-device\"\n",
			want: []string{"access_mode multi-node-single-writer allows one writer"}},
		{name: "per_alloc in a system job", typ: "system", volume: modes + "per_alloc = true\n",
			want: []string{"per_alloc is not allowed in system jobs"}},
		{name: "per_alloc with canaries", group: "update {\n canary = 1\n}", volume: modes + "per_alloc = true\n",
			want: []string{"per_alloc is not allowed with canary deployments"}},
		{name: "per_alloc and sticky", volume: modes + "per_alloc = true\nsticky = true\n",
			want: []string{"per_alloc and sticky cannot be used together"}},
		{name: "no source", source: "-", volume: modes, want: []string{"source is required"}},
		{name: "mount of an undeclared volume", volume: modes, task: "volume_mount {\n volume = \"w\"\n destination = \"/d\"\n}",
			want: []string{`task "t": volume_mount[0] refers to volume "w", which the group does not declare`}},
		{name: "plugin base dir under mount_dir", volume: modes,
			task: "csi_plugin {\n id = \"p\"\n type = \"node\"\n mount_dir = \"/csi\"\n stage_publish_base_dir = \"/csi/mounts\"\n}",
			want: []string{`csi_plugin: stage_publish_base_dir "/csi/mounts" must not be under mount_dir "/csi"`}},
		{name: "plugin base dir beside mount_dir", volume: modes,
			task: "csi_plugin {\n id = \"p\"\n type = \"node\"\n mount_dir = \"/csi\"\n stage_publish_base_dir = \"/csi-data\"\n}"},
		{name: "plugin without id, bad type", volume: modes, task: "csi_plugin {\n type = \"nodes\"\n}",
			want: []string{"csi_plugin: id is required", `csi_plugin: type "nodes": must be one of`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, count := tc.typ, tc.count
			if typ == "" {
				typ = "service"
			}
			if count == "" {
				count = "1"
			}
			source := "vol"
			if tc.source == "-" {
				source = ""
			}
			src := strings.NewReplacer("%SOURCE%", source, "%TYPE%", typ, "%COUNT%", count, "%GROUP%", tc.group, "%VOLUME%", tc.volume, "%TASK%", tc.task).Replace(tmpl)
			job, err := jobspec.Parse([]byte(src), "j.nomad.hcl", nil)
			if err != nil {
				t.Fatal(err)
			}
			err = jobspec.Validate(job)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
