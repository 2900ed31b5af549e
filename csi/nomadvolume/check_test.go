package nomadvolume_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/nomad/api"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "where: what" prefixes, in order
	}{
		{name: "good", src: minimal},
		{name: "misspelt context key", src: strings.Replace(minimal, `nsid   = "1"`, "nsid = \"1\"\nctrl_los_tmo = \"5\"", 1),
			want: []string{`volume_context: invalid ctrl_los_tmo (value redacted): is not a known volume context key (did you mean "ctrl_loss_tmo"?)`}},
		{name: "context error once for two capabilities",
			src:  strings.Replace(minimal, `nsid   = "1"`, "nsid = \"1\"\nctrl_loss_tmo = \"-5\"", 1) + "capability {\n access_mode = \"single-node-writer\"\n attachment_mode = \"block-device\"\n}\n",
			want: []string{`volume_context: invalid ctrl_loss_tmo "-5"`}},
		{name: "misspelt top-level key", src: minimal + "extrnal_id = \"x\"\n",
			want: []string{`key extrnal_id: is no field of a Nomad CSI volume: nomad volume register drops it without a word (did you mean "external_id"?)`}},
		{name: "legacy modes", src: minimal + "access_mode = \"single-node-writer\"\n",
			want: []string{"key access_mode: a top-level access_mode is dropped by nomad volume register; put it in a capability block"}},
		{name: "missing id, plugin and capability", src: "type = \"csi\"\ncontext {\n traddr = \"192.0.2.10\"\n nqn = \"nqn.2026-01.io.example:one\"\n nsid = \"1\"\n}\n",
			want: []string{"id: is required", "plugin_id: is required", "capability: at least one capability block"}},
		{name: "no id with a capability", src: strings.Replace(minimal, `id        = "v1"`, "", 1),
			want: []string{"id: is required", "id: volume_id is required"}},
		{name: "unsupported fs", src: minimal + "mount_options {\n fs_type = \"btrfs\"\n}\n",
			want: []string{`capability[0] single-node-writer/file-system: fs_type "btrfs" is not supported`}},
		{name: "file system for several writers", src: strings.Replace(minimal, `"single-node-writer"`, `"multi-node-multi-writer"`, 1),
			want: []string{"capability[0] multi-node-multi-writer/file-system: access mode MULTI_NODE_MULTI_WRITER needs block attachment"}},
		{name: "reader-only block", src: strings.Replace(strings.Replace(minimal, `"single-node-writer"`, `"single-node-reader-only"`, 1), `"file-system"`, `"block-device"`, 1),
			want: []string{"capability[0] single-node-reader-only/block-device: a read-only bind mount does not stop writes to a device node"}},
		{name: "unknown access mode", src: strings.Replace(minimal, `"single-node-writer"`, `"single-writer"`, 1),
			want: []string{`capability[0] single-writer/file-system: access_mode "single-writer" is not one Nomad knows`}},
		{name: "bad secret", src: minimal + "secrets {\n password = \"hunter2\"\n}\n",
			want: []string{"secrets: invalid password"}},
		{name: "required topology", src: minimal + "topology_request {\n required {\n  topology {\n   segments {\n    rack = \"r1\"\n   }\n  }\n }\n}\n",
			want: []string{"topology_request.required: nvmeof-csi reports no accessible_topology"}},
		{name: "no context", src: strings.SplitN(minimal, "context", 2)[0],
			want: []string{"volume_context: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := nomadvolume.Parse([]byte(tc.src), "t.hcl")
			if err != nil {
				t.Fatal(err)
			}
			got := nomadvolume.Check(s)
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(got), len(tc.want), got)
			}
			for i, p := range got {
				if !strings.HasPrefix(p.String(), tc.want[i]) {
					t.Errorf("problem %d:\n  %s\nwant it to start with\n  %s", i, p, tc.want[i])
				}
				if strings.Contains(p.String(), "hunter2") {
					t.Errorf("a secret's value reached a problem: %s", p)
				}
			}
		})
	}
}

func TestNotes(t *testing.T) {
	s, err := nomadvolume.Parse([]byte(minimal+"parameters {\n a = \"b\"\n}\ncapacity_min = \"1G\"\n"), "t.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if n := nomadvolume.Notes(s); len(n) != 2 {
		t.Errorf("notes %v", n)
	}
	if p := nomadvolume.Check(s); len(p) != 0 {
		t.Errorf("notes are no problems: %v", p)
	}
}

func TestCapability(t *testing.T) {
	mo := &api.CSIMountOptions{FSType: "xfs", MountFlags: []string{"noatime"}}
	tests := []struct {
		access     api.CSIVolumeAccessMode
		attachment api.CSIVolumeAttachmentMode
		mo         *api.CSIMountOptions
		want       *csi.VolumeCapability
	}{
		{"single-node-writer", "file-system", mo, &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "xfs", MountFlags: []string{"noatime"}}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}},
		{"multi-node-reader-only", "file-system", nil, &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY}}},
		{"multi-node-multi-writer", "block-device", mo, &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}}},
	}
	for _, tc := range tests {
		got, err := nomadvolume.Capability(tc.access, tc.attachment, tc.mo)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != tc.want.String() {
			t.Errorf("%s/%s: %v, want %v", tc.access, tc.attachment, got, tc.want)
		}
	}
	if _, err := nomadvolume.Capability("single-node-writer", "files", nil); err == nil {
		t.Error("an unknown attachment mode was mapped")
	}
}

func TestMergeMountOptions(t *testing.T) {
	vol := &api.CSIMountOptions{FSType: "ext4", MountFlags: []string{"noatime"}}
	tests := []struct {
		name string
		job  *api.CSIMountOptions
		want *api.CSIMountOptions
	}{
		{"no job options", nil, &api.CSIMountOptions{FSType: "ext4", MountFlags: []string{"noatime"}}},
		{"fs_type replaces", &api.CSIMountOptions{FSType: "xfs"}, &api.CSIMountOptions{FSType: "xfs", MountFlags: []string{"noatime"}}},
		{"flags replace the list", &api.CSIMountOptions{MountFlags: []string{"sync"}}, &api.CSIMountOptions{FSType: "ext4", MountFlags: []string{"sync"}}},
		{"empty flags replace too", &api.CSIMountOptions{MountFlags: []string{}}, &api.CSIMountOptions{FSType: "ext4", MountFlags: []string{}}},
	}
	for _, tc := range tests {
		got := nomadvolume.MergeMountOptions(vol, tc.job)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if vol.MountFlags[0] != "noatime" {
		t.Error("the merge changed the volume's options")
	}
}

func TestUsage(t *testing.T) {
	if got := nomadvolume.Usage(false, "file-system", "single-node-writer"); got != "rw-file-system-single-node-writer" {
		t.Errorf("usage %q", got)
	}
	if got := nomadvolume.Usage(true, "block-device", "multi-node-reader-only"); got != "ro-block-device-multi-node-reader-only" {
		t.Errorf("usage %q", got)
	}
}
