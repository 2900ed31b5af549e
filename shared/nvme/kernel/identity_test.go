package kernel

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// newSimHost is a host with subsystem one (namespaces 1 and 2) on
// 127.0.0.1:4420.
func newSimHost(t *testing.T) *kerneltest.Host {
	t.Helper()
	h := kerneltest.New(t)
	h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne, nsTwo)
	return h
}

// A controller deleted and re-created under the same name (names are
// reused; nvmet may even hand out the same cntlid) is another controller:
// its ID differs, and a Disconnect aimed at the old one leaves it alone.
func TestControllerIDSurvivesReconnectNotRecreation(t *testing.T) {
	h := newSimHost(t)
	k := newTestConnector(t, h)
	first, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == 0 {
		t.Fatal("no ID read")
	}
	// An outage and a reconnect: the same controller, whatever its cntlid.
	h.SetDown(nqnOne, true)
	h.SetDown(nqnOne, false)
	again, err := k.sys.controller(first.Name)
	if err != nil || again.ID != first.ID {
		t.Fatalf("after a reconnect: %+v, %v; want ID %d", again, err, first.ID)
	}
	// Deleted, and someone connects again: same name, another ID.
	if err := h.RemoveController(first.Name); err != nil {
		t.Fatal(err)
	}
	adminConnect(t, h, adminOptions(nqnOne))
	theirs, err := k.sys.controller(first.Name)
	if err != nil {
		t.Fatal(err)
	}
	if theirs.ID == first.ID {
		t.Fatalf("a new controller under the name %s has the old one's ID %d", first.Name, first.ID)
	}
	if err := k.Disconnect(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if _, err := k.sys.controller(first.Name); err != nil {
		t.Fatalf("Disconnect of the old controller deleted the new one: %v", err)
	}
}

// Namespaces reports what stands on a disk: partitions with their device
// numbers, and holders; a read that fails fails the whole list.
func TestNamespacesReportPartitionsAndHolders(t *testing.T) {
	h := newSimHost(t)
	k := newTestConnector(t, h)
	ctrl, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	nss, err := k.Namespaces(ctrl)
	if err != nil || len(nss) == 0 {
		t.Fatalf("Namespaces: %v, %v", nss, err)
	}
	disk := nss[0].Name
	part := h.AddPartition(disk)
	h.AddHolder(disk, "dm-0")
	nss, err = k.Namespaces(ctrl)
	if err != nil {
		t.Fatal(err)
	}
	var got Namespace
	for _, ns := range nss {
		if ns.Name == disk {
			got = ns
		}
	}
	if len(got.Partitions) != 1 || got.Partitions[0].Name != filepath.Base(part) || got.Partitions[0].Dev == "" || got.Partitions[0].Dev == got.Dev {
		t.Errorf("partitions of %s: %+v", disk, got.Partitions)
	}
	if len(got.Holders) != 1 || got.Holders[0] != "dm-0" {
		t.Errorf("holders of %s: %v", disk, got.Holders)
	}
	repair := h.BreakAttr(filepath.Join(h.SysfsRoot(), "block", filepath.Base(part), "dev"))
	defer repair()
	if _, err := k.Namespaces(ctrl); err == nil || errors.Is(err, ErrControllerGone) {
		t.Errorf("Namespaces with a partition that cannot be read: %v, want an error", err)
	}
}
