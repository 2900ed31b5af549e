package kernel

import "sync"

// addressCache keeps each controller's `address` attribute by the
// controller's name and sysfs inode, so that it is read once per
// controller, not on every look.
//
// Reading `address` of an nvme-tcp controller asks the kernel for its
// admin queue's socket name, and Debian's 6.12 (6.12.118) dereferences a
// NULL socket when that read races with the queue's teardown (a delete,
// a reset, error recovery): the lab's VM oopsed in nvme_tcp_get_address
// with the health monitor reading every 5 ms through a detach, and
// Mayastor's node agent hit the same on 6.1.14 (openebs/mayastor#1330).
// What the plugin uses of the attribute (traddr, trsvcid, host_traddr,
// host_iface) is fixed when the controller is created and never changes
// over its life; a controller that takes the name later has another inode.
type addressCache struct {
	mu sync.Mutex
	m  map[addressKey]string
}

type addressKey struct {
	name string
	id   uint64
}

func newAddressCache() *addressCache { return &addressCache{m: map[addressKey]string{}} }

// get returns the address read before for the controller, if any. A nil
// cache has none.
func (c *addressCache) get(name string, id uint64) (string, bool) {
	if c == nil || id == 0 {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[addressKey{name, id}]
	return v, ok
}

// put remembers an address that parsed.
func (c *addressCache) put(name string, id uint64, address string) {
	if c == nil || id == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[addressKey{name, id}] = address
}

// keepOnly forgets every controller not in live (a full listing of the
// node's controllers): the cache never holds more than the node has.
func (c *addressCache) keepOnly(live []Controller) {
	if c == nil {
		return
	}
	keep := make(map[addressKey]bool, len(live))
	for _, l := range live {
		keep[addressKey{l.Name, l.ID}] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if !keep[k] {
			delete(c.m, k)
		}
	}
}
