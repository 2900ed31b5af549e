package kernel

import (
	"testing"
)

// A controller's `address` is read once, not on every look: reading it
// races the admin queue's teardown in the kernel (addressCache). Its reads
// are broken after the first look, and every later look still answers,
// with the address of the first; a controller that takes the name later is
// another, whose address is read; a full listing forgets controllers gone.
func TestControllerAddressIsReadOncePerController(t *testing.T) {
	h := newSimHost(t)
	k := newTestConnector(t, h)
	first, err := k.Connect(t.Context(), valid(t, connectionTo(nqnOne)))
	if err != nil {
		t.Fatal(err)
	}
	repair := h.BreakAttr("class/nvme/" + first.Name + "/address")
	defer repair()
	for range 3 {
		c, err := k.sys.controller(first.Name)
		if err != nil {
			t.Fatalf("a look at %s read its address again: %v", first.Name, err)
		}
		if c.TrAddr != first.TrAddr || c.TrSvcID != first.TrSvcID || c.HostTrAddr != first.HostTrAddr || c.HostIface != first.HostIface {
			t.Fatalf("address from the cache %+v, want that of %+v", c, first)
		}
	}
	all, err := k.Controllers()
	if err != nil || len(all) != 1 || all[0].Name != first.Name {
		t.Fatalf("Controllers with the address unreadable: %+v, %v", all, err)
	}
	repair()

	if err := h.RemoveController(first.Name); err != nil {
		t.Fatal(err)
	}
	if all, err := k.Controllers(); err != nil || len(all) != 0 {
		t.Fatalf("Controllers after the removal: %+v, %v", all, err)
	}
	if n := k.sys.addrs.size(); n != 0 {
		t.Fatalf("the cache keeps %d address(es) of controllers gone", n)
	}
	name := adminConnect(t, h, adminOptions(nqnOne, "host_iface=lo"))
	theirs, err := k.sys.controller(name)
	if err != nil {
		t.Fatal(err)
	}
	if name == first.Name && theirs.ID == first.ID {
		t.Fatalf("the new controller %s has the old one's ID %d", name, first.ID)
	}
	if theirs.HostIface != "lo" {
		t.Fatalf("the new controller's address was not read: %+v", theirs)
	}
}

// size is how many addresses the cache holds.
func (c *addressCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
