package provider

import (
	"errors"
	"reflect"
	"runtime/debug"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

func TestParseImportID(t *testing.T) {
	tests := []struct {
		id      string
		want    map[string]string
		wantErr bool
	}{
		{id: "traddr=192.0.2.1,nqn=nqn.x:y,nsid=1", want: map[string]string{"traddr": "192.0.2.1", "nqn": "nqn.x:y", "nsid": "1"}},
		{id: "nqn=a=b", want: map[string]string{"nqn": "a=b"}},
		{id: "traddr=", want: map[string]string{"traddr": ""}},
		{id: "nqn.x:y", wantErr: true},
		{id: "=1", wantErr: true},
		{id: "nsid=1,nsid=2", wantErr: true},
		{id: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := parseImportID(tt.id)
			if tt.wantErr {
				if !errors.Is(err, errImportID) {
					t.Fatalf("parseImportID(%q) error = %v, want errImportID", tt.id, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseImportID(%q) = %v, %v; want %v", tt.id, got, err, tt.want)
			}
		})
	}
}

// TestConnectionIDImportsBack: the id of any volume is an import id that
// parses to the same identity.
func TestConnectionIDImportsBack(t *testing.T) {
	vols := []nvme.Volume{
		testVolume(nil),
		testVolume(func(v *nvme.Volume) {
			v.Namespace = nvme.NamespaceSelector{UUID: "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"}
		}),
		testVolume(func(v *nvme.Volume) { v.Target.TrAddr, v.Target.TrSvcID = "fe80::1%eth0", "4421" }),
	}
	for _, v := range vols {
		id := connectionID(v.ToVolumeContext())
		t.Run(id, func(t *testing.T) {
			vc, err := parseImportID(id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := nvme.ParseVolumeContext(vc)
			if err != nil {
				t.Fatal(err)
			}
			if got.Target != v.Target || got.Namespace != v.Namespace {
				t.Fatalf("id %q imports as %+v %+v, want %+v %+v", id, got.Target, got.Namespace, v.Target, v.Namespace)
			}
		})
	}
}

func TestAttributeForKey(t *testing.T) {
	// Every volume-context key is an attribute of the resource.
	attrs := connectionSchema().Attributes
	for _, key := range nvme.VolumeContextKeys() {
		if _, ok := attrs[attributeForKey(key)]; !ok {
			t.Errorf("key %s maps to %s, which the schema lacks", key, attributeForKey(key))
		}
	}
	// Every reconnection key is an attribute of the defaults block.
	block := providerSchema().Blocks["defaults"].GetNestedObject().GetAttributes()
	for _, key := range reconnectKeys {
		if _, ok := block[key]; !ok {
			t.Errorf("defaults block lacks %s", key)
		}
	}
}

func TestVersionOf(t *testing.T) {
	tests := []struct{ module, want string }{
		{"v1.2.3", "v1.2.3"},
		{"(devel)", "dev"},
		{"", "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			if got := versionOf(&debug.BuildInfo{Main: debug.Module{Version: tt.module}}); got != tt.want {
				t.Fatalf("versionOf(%q) = %q, want %q", tt.module, got, tt.want)
			}
		})
	}
}
