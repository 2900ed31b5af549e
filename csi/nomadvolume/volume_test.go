package nomadvolume_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
)

const minimal = `
id        = "v1"
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

func TestParseExample(t *testing.T) {
	spec, err := nomadvolume.ParseFile("../../examples/nomad/volume.hcl")
	if err != nil {
		t.Fatal(err)
	}
	v := spec.Volume
	want := &api.CSIVolume{
		ID: "pg-data", Name: "pg-data", PluginID: "nvmeof", ExternalID: "nqn.2016-06.io.spdk:cnode1/nsid:1",
		RequestedCapabilities: []*api.CSIVolumeCapability{
			{AccessMode: "single-node-writer", AttachmentMode: "file-system"},
			{AccessMode: "single-node-writer", AttachmentMode: "block-device"},
		},
		MountOptions: &api.CSIMountOptions{FSType: "ext4", MountFlags: []string{"noatime"}},
		Context: map[string]string{
			"traddr": "192.0.2.10", "trsvcid": "4420", "transport": "tcp", "nqn": "nqn.2016-06.io.spdk:cnode1",
			"nsid": "1", "uuid": "11111111-1111-4111-8111-111111111111", "ctrl_loss_tmo": "-1", "reconnect_delay": "5",
		},
	}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", v, want)
	}
	if len(spec.Dropped) != 0 || len(spec.Ignored) != 0 {
		t.Errorf("dropped %v, ignored %v", spec.Dropped, spec.Ignored)
	}
	if p := nomadvolume.Check(spec); len(p) != 0 {
		t.Errorf("the example has problems: %v", p)
	}
}

// TestParseLikeTheCLI pins what `nomad volume register` does with inputs
// users write: weak typing, blocks merged into maps, keys dropped.
func TestParseLikeTheCLI(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		check   func(t *testing.T, s *nomadvolume.Spec)
		wantErr string
	}{
		{name: "numbers and booleans in context become strings, booleans as 1 and 0", src: strings.Replace(minimal, `nsid   = "1"`, "nsid = 1\nhdr_digest = true\ndata_digest = false", 1),
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				c := s.Volume.Context
				if c["nsid"] != "1" || c["hdr_digest"] != "1" || c["data_digest"] != "0" {
					t.Errorf("context %v", c)
				}
			}},
		{name: "two context blocks merge", src: minimal + "context {\n  reconnect_delay = \"2\"\n}\n",
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				if s.Volume.Context["reconnect_delay"] != "2" || s.Volume.Context["traddr"] != "192.0.2.10" {
					t.Errorf("context %v", s.Volume.Context)
				}
			}},
		{name: "a misspelt key is dropped", src: minimal + `extrnal_id = "nqn/x"` + "\n",
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				if !reflect.DeepEqual(s.Dropped, []string{"extrnal_id"}) || s.Volume.ExternalID != "" {
					t.Errorf("dropped %v, external_id %q", s.Dropped, s.Volume.ExternalID)
				}
				if got := nomadvolume.RemoteID(s.Volume); got != "v1" {
					t.Errorf("RemoteID = %q, want the id", got)
				}
			}},
		{name: "legacy top-level modes are dropped", src: minimal + "access_mode = \"single-node-writer\"\nattachment_mode = \"file-system\"\n",
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				if !reflect.DeepEqual(s.Dropped, []string{"access_mode", "attachment_mode"}) || s.Volume.AccessMode != "" {
					t.Errorf("dropped %v, access mode %q", s.Dropped, s.Volume.AccessMode)
				}
			}},
		{name: "keys match field names in any case", src: minimal + "NAME = \"big\"\nExternal_ID = \"nqn/x\"\n",
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				if s.Volume.Name != "big" || s.Volume.ExternalID != "nqn/x" || len(s.Dropped) != 0 {
					t.Errorf("name %q external_id %q dropped %v", s.Volume.Name, s.Volume.ExternalID, s.Dropped)
				}
			}},
		{name: "only the first mount_options block counts", src: minimal + "mount_options {\n fs_type = \"xfs\"\n}\nmount_options {\n fs_type = \"ext4\"\n}\n",
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				if s.Volume.MountOptions.FSType != "xfs" || len(s.Ignored) != 1 {
					t.Errorf("fs_type %q, ignored %v", s.Volume.MountOptions.FSType, s.Ignored)
				}
			}},
		{name: "secrets and capacity", src: minimal + "secrets {\n dhchap_secret = \"DHHC-1:00:x\"\n}\ncapacity_min = \"10GiB\"\n",
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				if s.Volume.Secrets["dhchap_secret"] != "DHHC-1:00:x" || s.Volume.RequestedCapacityMin != 10<<30 {
					t.Errorf("secrets %d, capacity_min %d", len(s.Volume.Secrets), s.Volume.RequestedCapacityMin)
				}
			}},
		{name: "topology", src: minimal + "topology_request {\n required {\n  topology {\n   segments {\n    rack = \"r1\"\n   }\n  }\n }\n}\n",
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				tr := s.Volume.RequestedTopologies
				if tr == nil || len(tr.Required) != 1 || tr.Required[0].Segments["rack"] != "r1" {
					t.Errorf("topology %+v", tr)
				}
			}},
		{name: "JSON", src: `{"id": "v1", "type": "csi", "plugin_id": "nvmeof",
			"capability": [{"access_mode": "single-node-writer", "attachment_mode": "block-device"}],
			"context": {"traddr": "192.0.2.10", "nqn": "nqn.2026-01.io.example:one", "nsid": "1"}}`,
			check: func(t *testing.T, s *nomadvolume.Spec) {
				t.Helper()
				if s.Volume.ID != "v1" || len(s.Volume.RequestedCapabilities) != 1 || s.Volume.Context["nsid"] != "1" {
					t.Errorf("volume %+v", s.Volume)
				}
			}},
		{name: "no type", src: strings.Replace(minimal, `type      = "csi"`, "", 1), wantErr: `type is required: "csi"`},
		{name: "host volume", src: strings.Replace(minimal, `"csi"`, `"host"`, 1), wantErr: `type "host": nvmeof volumes are type "csi"`},
		{name: "unknown key in capability", src: minimal + "capability {\n access_mode = \"single-node-writer\"\n fs_type = \"ext4\"\n}\n",
			wantErr: `capability[1]: invalid key "fs_type" (allowed: access_mode, attachment_mode)`},
		{name: "unknown key in mount_options", src: minimal + "mount_options {\n flags = [\"ro\"]\n}\n",
			wantErr: `mount_options: invalid key "flags" (allowed: fs_type, mount_flags)`},
		{name: "bad capacity", src: minimal + "capacity_max = \"lots\"\n", wantErr: `capacity_max "lots"`},
		{name: "syntax", src: "id = \n", wantErr: "test.hcl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := nomadvolume.Parse([]byte(tc.src), "test.hcl")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "test.hcl") {
					t.Fatalf("error %v, want one naming test.hcl and saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}
