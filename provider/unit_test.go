package provider

import (
	"errors"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

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

func TestAttributeForKey(t *testing.T) {
	// Every volume-context key is an attribute of the resource or of its
	// namespaces.
	attrs := connectionSchema().Attributes
	nested := attrs[attrNamespaces].(schema.MapNestedAttribute).NestedObject.Attributes
	for _, key := range nvme.VolumeContextKeys() {
		name := attributeForKey(key)
		_, top := attrs[name]
		_, inner := nested[name]
		if top == inner || inner != isNamespaceKey(key) {
			t.Errorf("key %s maps to %s: in the resource %t, in a namespace %t", key, name, top, inner)
		}
	}
	// Every inherited key is an attribute of the defaults block.
	block := providerSchema().Blocks[attrDefaults].GetNestedObject().GetAttributes()
	for _, s := range connectionSettings {
		if _, ok := block[s.key]; ok != s.inherited {
			t.Errorf("defaults block has %s: %t, inherited: %t", s.key, ok, s.inherited)
		}
	}
}

func TestParseImportID(t *testing.T) {
	tests := []struct {
		id      string
		conn    map[string]string
		ns      []importNamespace
		wantErr bool
	}{
		{id: "traddr=192.0.2.1,nqn=nqn.x:y;a:nsid=1", conn: map[string]string{"traddr": "192.0.2.1", "nqn": "nqn.x:y"},
			ns: []importNamespace{{"a", map[string]string{"nsid": "1"}}}},
		{id: ";a:traddr=192.0.2.1,nqn=nqn.x:y,nsid=1;b:nsid=2", conn: map[string]string{},
			ns: []importNamespace{{"a", map[string]string{"traddr": "192.0.2.1", "nqn": "nqn.x:y", "nsid": "1"}}, {"b", map[string]string{"nsid": "2"}}}},
		{id: "nqn=a=b;a:", conn: map[string]string{"nqn": "a=b"}, ns: []importNamespace{{"a", map[string]string{}}}},
		{id: "traddr=192.0.2.1,nqn=nqn.x:y", wantErr: true},       // no namespace
		{id: "traddr=192.0.2.1;a", wantErr: true},                 // no ':'
		{id: "traddr=192.0.2.1;a:nsid=1;a:nsid=2", wantErr: true}, // a twice
		{id: "traddr=192.0.2.1;a:nsid=1,nsid=2", wantErr: true},
		{id: "traddr;a:nsid=1", wantErr: true},
		{id: "=1;a:nsid=1", wantErr: true},
		{id: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			conn, ns, err := parseImportID(tt.id)
			if tt.wantErr {
				if !errors.Is(err, errImportID) {
					t.Fatalf("parseImportID(%q) error = %v, want errImportID", tt.id, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(conn, tt.conn) || !reflect.DeepEqual(ns, tt.ns) {
				t.Fatalf("parseImportID(%q) = %v, %v, %v; want %v, %v", tt.id, conn, ns, err, tt.conn, tt.ns)
			}
		})
	}
}

// TestImportVolumes: the namespaces of an import id must be one
// connection, as the kernel would hold them.
func TestImportVolumes(t *testing.T) {
	base := map[string]string{"traddr": testAddr, "nqn": testNQN}
	tests := []struct {
		name    string
		conn    map[string]string
		ns      []importNamespace
		wantErr string
	}{
		{name: "shared settings", conn: base, ns: []importNamespace{{"a", map[string]string{"nsid": "1"}}, {"b", map[string]string{"nsid": "2"}}}},
		{name: "whole contexts that agree", conn: map[string]string{}, ns: []importNamespace{
			{"a", map[string]string{"traddr": testAddr, "nqn": testNQN, "nsid": "1", "ctrl_loss_tmo": "600"}},
			{"b", map[string]string{"traddr": testAddr, "nqn": testNQN, "nsid": "2", "ctrlLossTmo": "600"}},
		}},
		{name: "settings that disagree", conn: base, ns: []importNamespace{
			{"a", map[string]string{"nsid": "1", "fast_io_fail_tmo": "-1"}}, {"b", map[string]string{"nsid": "2", "fast_io_fail_tmo": "30"}},
		}, wantErr: `namespaces "a" and "b" disagree on fast_io_fail_tmo -1 -> 30`},
		{name: "targets that differ", conn: map[string]string{"nqn": testNQN}, ns: []importNamespace{
			{"a", map[string]string{"traddr": testAddr, "nsid": "1"}}, {"b", map[string]string{"traddr": "192.0.2.11", "nsid": "2"}},
		}, wantErr: `namespaces "a" and "b" name different targets`},
		{name: "a key given twice with two values", conn: base, ns: []importNamespace{{"a", map[string]string{"nsid": "1", "traddr": "192.0.2.11"}}},
			wantErr: `namespace "a" and the connection set traddr to different values: give it once`},
		{name: "core error", conn: base, ns: []importNamespace{{"a", map[string]string{"nsid": "0"}}}, wantErr: `namespace "a": invalid nsid "0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vols, err := importVolumes(tt.conn, tt.ns)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("importVolumes = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(vols) != len(tt.ns) {
				t.Fatalf("importVolumes = %v, %v", vols, err)
			}
		})
	}
}

// TestImportErrorsHideSecrets: a DH-HMAC-CHAP key pasted into an import id
// by mistake never comes back in the error, wherever it sits.
func TestImportErrorsHideSecrets(t *testing.T) {
	const secret = "DHHC-1:00:c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwYWJjZGVm:"
	base := "traddr=" + testAddr + ",nqn=" + testNQN
	ids := []string{
		base + ",dhchap_secret=" + secret + ";a:nsid=1",
		base + ";a:nsid=1,dhchap_secret=" + secret,
		base + ",dhchap_secret=x;a:nsid=1,dhchap_secret=" + secret,
		base + ",dhchap_secret=" + secret + ";a:nsid=1,dhchap_secret=y",
		base + ";dhchap_secret=" + secret,
		base + ";" + secret,
	}
	for _, id := range ids {
		conn, ns, err := parseImportID(id)
		if err == nil {
			_, err = importVolumes(conn, ns)
		}
		if err == nil {
			t.Fatalf("import id %q accepted", id)
		}
		if strings.Contains(err.Error(), "c2VjcmV0") {
			t.Errorf("the error for %q shows the key: %v", id, err)
		}
	}
}
