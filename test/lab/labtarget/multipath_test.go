package labtarget

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCreateMultipath(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	backing := map[uint32]string{1: "/run/lab/multi1.img", 2: "/run/lab/multi2.img"}
	if err := n.CreateMultipath(backing); err != nil {
		t.Fatalf("CreateMultipath() = %v", err)
	}
	sub := filepath.Join("subsystems", SubsystemMulti)
	tests := []struct{ path, want string }{
		{sub + "/attr_allow_any_host", "1"},
		{sub + "/namespaces/1/device_path", "/run/lab/multi1.img"},
		{sub + "/namespaces/1/buffered_io", "1"},
		{sub + "/namespaces/1/ana_grpid", "1"},
		{sub + "/namespaces/2/ana_grpid", "2"},
		{sub + "/namespaces/2/device_uuid", MultiNS2UUID},
		{sub + "/namespaces/2/enable", "1"},
		{"ports/21/addr_traddr", "127.0.0.2"},
		{"ports/22/addr_traddr", "127.0.0.3"},
		{"ports/22/addr_trsvcid", "4420"},
		{"ports/22/addr_trtype", "tcp"},
		{"ports/21/ana_groups/2/ana_state", "optimized"},
		{"ports/22/ana_groups/2/ana_state", "optimized"},
	}
	for _, tt := range tests {
		if got := readAttr(t, filepath.Join(n.Root, tt.path)); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.path, got, tt.want)
		}
	}
	for _, p := range MultipathPaths() {
		if fi, err := os.Stat(filepath.Join(n.Root, "ports", p.PortID, "ana_groups", "2")); err != nil || !fi.IsDir() {
			t.Errorf("port %s has no ANA group 2: %v", p.PortID, err)
		}
		if link, err := os.Readlink(n.pathLink(p)); err != nil || link != n.subsystemDir(SubsystemMulti) {
			t.Errorf("port %s links %q, %v", p.PortID, link, err)
		}
	}
}

func TestCreateMultipathNeedsEveryBackingFile(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	if err := n.CreateMultipath(map[uint32]string{1: "/run/lab/multi1.img"}); err == nil {
		t.Fatal("CreateMultipath without namespace 2's file succeeded")
	}
}

func TestCutAndRestorePath(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	if err := n.CreateMultipath(map[uint32]string{1: "a", 2: "b"}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := n.CutPath(PathA); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(n.pathLink(PathA)); !os.IsNotExist(err) {
		t.Errorf("path A still linked: %v", err)
	}
	if _, err := os.Lstat(n.pathLink(PathB)); err != nil {
		t.Errorf("cutting A touched B: %v", err)
	}
	for range 2 {
		if err := n.RestorePath(PathA); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Lstat(n.pathLink(PathA)); err != nil {
		t.Errorf("path A not restored: %v", err)
	}
}

func TestSetANAState(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	if err := n.CreateMultipath(map[uint32]string{1: "a", 2: "b"}); err != nil {
		t.Fatal(err)
	}
	if err := n.SetANAState(PathB, 2, "inaccessible"); err != nil {
		t.Fatal(err)
	}
	if got := readAttr(t, filepath.Join(n.Root, "ports/22/ana_groups/2/ana_state")); got != "inaccessible" {
		t.Errorf("ana_state = %q", got)
	}
	if err := n.SetANAState(PathB, 2, "gone"); err == nil {
		t.Error("an unknown ANA state was written")
	}
}

func TestRemoveMultipathOfNothing(t *testing.T) {
	if err := (Nvmet{Root: t.TempDir()}).RemoveMultipath(); err != nil {
		t.Fatalf("RemoveMultipath() with nothing built = %v", err)
	}
}
