package labtarget

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func devicesFor(subsystems []Subsystem) map[string]string {
	devices := map[string]string{}
	i := 0
	for _, s := range subsystems {
		for _, ns := range s.Namespaces {
			devices[DeviceKey(s.NQN, ns.NSID)] = fmt.Sprintf("/dev/loop%d", i)
			i++
		}
	}
	return devices
}

func readAttr(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCreateBuildsLayout(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	if err := n.Create(Subsystems(), devicesFor(Subsystems())); err != nil {
		t.Fatalf("Create() = %v", err)
	}
	tests := []struct {
		path string
		want string
	}{
		{"subsystems/" + SubsystemOne + "/attr_allow_any_host", "1"},
		{"subsystems/" + SubsystemOne + "/namespaces/1/device_path", "/dev/loop0"},
		{"subsystems/" + SubsystemOne + "/namespaces/1/device_uuid", OneNS1UUID},
		{"subsystems/" + SubsystemOne + "/namespaces/2/device_nguid", OneNS2NGUID},
		{"subsystems/" + SubsystemOne + "/namespaces/2/enable", "1"},
		{"subsystems/" + SubsystemTwo + "/namespaces/1/device_uuid", TwoNS1UUID},
		{"subsystems/" + SubsystemACL + "/attr_allow_any_host", "0"},
		{"subsystems/" + SubsystemACL + "/namespaces/1/device_path", "/dev/loop3"},
		{"ports/1/addr_trtype", "tcp"},
		{"ports/1/addr_traddr", "127.0.0.1"},
		{"ports/1/addr_trsvcid", "4420"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := readAttr(t, filepath.Join(n.Root, tt.path)); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
	target, err := os.Readlink(filepath.Join(n.Root, "subsystems", SubsystemACL, "allowed_hosts", AllowedHostNQN))
	if err != nil || target != filepath.Join(n.Root, "hosts", AllowedHostNQN) {
		t.Errorf("allowed host link = %q, %v", target, err)
	}
	for _, s := range Subsystems() {
		if linked, err := n.Linked(s.NQN); err != nil || !linked {
			t.Errorf("Linked(%s) = %v, %v; want linked", s.NQN, linked, err)
		}
	}
}

func TestCreateNeedsEveryDevice(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	devices := devicesFor(Subsystems())
	delete(devices, DeviceKey(SubsystemTwo, 1))
	err := n.Create(Subsystems(), devices)
	if err == nil || !strings.Contains(err.Error(), SubsystemTwo) {
		t.Fatalf("Create() = %v, want an error naming %s", err, SubsystemTwo)
	}
}

func TestUnlinkLink(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	if err := n.Create(Subsystems(), devicesFor(Subsystems())); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		op         func(string) error
		wantLinked bool
	}{
		{"unlink", n.Unlink, false},
		{"unlink again is a no-op", n.Unlink, false},
		{"link", n.Link, true},
		{"link again is a no-op", n.Link, true},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if err := step.op(SubsystemOne); err != nil {
				t.Fatalf("%s(%s) = %v", step.name, SubsystemOne, err)
			}
			linked, err := n.Linked(SubsystemOne)
			if err != nil || linked != step.wantLinked {
				t.Errorf("Linked() = %v, %v; want %v", linked, err, step.wantLinked)
			}
			// The other subsystems are untouched.
			if linked, err := n.Linked(SubsystemTwo); err != nil || !linked {
				t.Errorf("Linked(%s) = %v, %v; want linked", SubsystemTwo, linked, err)
			}
		})
	}
}

func TestUnknownSubsystem(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	ops := map[string]func(string) error{
		"Unlink": n.Unlink,
		"Link":   n.Link,
		"Linked": func(nqn string) error { _, err := n.Linked(nqn); return err },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			if err := op("nqn.2026-01.io.nvmeof.lab:nope"); !errors.Is(err, ErrUnknownSubsystem) {
				t.Errorf("%s() = %v, want %v", name, err, ErrUnknownSubsystem)
			}
		})
	}
}

func TestHostIdentityFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "nvme")
	if err := HostIdentityFiles(dir, HostNQN, HostID); err != nil {
		t.Fatal(err)
	}
	if got := readAttr(t, filepath.Join(dir, "hostnqn")); got != HostNQN+"\n" {
		t.Errorf("hostnqn = %q", got)
	}
	if got := readAttr(t, filepath.Join(dir, "hostid")); got != HostID+"\n" {
		t.Errorf("hostid = %q", got)
	}
}

func TestLayoutIdentitiesAreConsistent(t *testing.T) {
	for _, s := range Subsystems() {
		for _, ns := range s.Namespaces {
			if got := strings.ReplaceAll(ns.UUID, "-", ""); len(ns.NGUID) != 32 || len(got) != 32 {
				t.Errorf("%s nsid %d: uuid %q / nguid %q have the wrong length", s.NQN, ns.NSID, ns.UUID, ns.NGUID)
			}
		}
	}
}

func TestSetHostAuth(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	if err := n.Create(Subsystems(), devicesFor(Subsystems())); err != nil {
		t.Fatal(err)
	}
	// Without dhchap_key in the host directory, nvmet has no auth.
	if ok, err := n.TargetAuth(); err != nil || ok {
		t.Fatalf("TargetAuth() = %v, %v on a tree without dhchap_key", ok, err)
	}
	if err := n.SetHostAuth(HostNQN, LabHostAuth()); !errors.Is(err, ErrNoTargetAuth) {
		t.Fatalf("SetHostAuth() = %v, want ErrNoTargetAuth", err)
	}
	// A kernel with CONFIG_NVME_TARGET_AUTH shows the attributes.
	for _, a := range []string{"dhchap_key", "dhchap_ctrl_key", "dhchap_hash", "dhchap_dhgroup"} {
		if err := os.WriteFile(filepath.Join(n.Root, "hosts", HostNQN, a), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.SetHostAuth(HostNQN, LabHostAuth()); err != nil {
		t.Fatal(err)
	}
	for attr, want := range map[string]string{
		"dhchap_key": HostKey, "dhchap_ctrl_key": CtrlKey, "dhchap_hash": AuthHash, "dhchap_dhgroup": AuthDHGroup,
	} {
		if got := readAttr(t, filepath.Join(n.Root, "hosts", HostNQN, attr)); got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	link, err := os.Readlink(filepath.Join(n.Root, "subsystems", SubsystemAuth, "allowed_hosts", HostNQN))
	if err != nil || link != filepath.Join(n.Root, "hosts", HostNQN) {
		t.Errorf("%s allows %q, %v; want %s", SubsystemAuth, link, err, HostNQN)
	}
}

func TestPortDown(t *testing.T) {
	n := Nvmet{Root: t.TempDir()}
	if err := n.Create(Subsystems(), devicesFor(Subsystems())); err != nil {
		t.Fatal(err)
	}
	restore, err := n.PortDown()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Subsystems() {
		if linked, err := n.Linked(s.NQN); err != nil || linked {
			t.Errorf("after PortDown, Linked(%s) = %v, %v", s.NQN, linked, err)
		}
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if err := restore(); err != nil {
		t.Errorf("a second restore = %v, want nil", err)
	}
	for _, s := range Subsystems() {
		if linked, err := n.Linked(s.NQN); err != nil || !linked {
			t.Errorf("after restore, Linked(%s) = %v, %v", s.NQN, linked, err)
		}
	}
}
