package provider

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Terraform sends a provider no resource addresses and no list of the
// resources it is about to plan: each nvme_connection is planned by its own
// PlanResourceChange call. What one provider instance does see is every
// call of one plan: Terraform starts (or, for acceptance tests, configures)
// the provider once per walk, and plans every resource instance of that
// provider configuration through it. The registry hangs off the data
// Configure makes, so it lives exactly as long as one plan (or one apply's
// re-plan) and never mixes two of them.
//
// The first connection to claim a subsystem holds it; a second one of the
// same walk is refused, naming the first by its namespaces (the provider
// cannot know its address; Terraform adds the address of the refused one).
// A connection with several portals claims the subsystem at each of them:
// a portal of one connection that is another's first (or further) portal
// is the same controller declared twice.
//
// Terraform plans a resource it replaces twice in one walk: once against
// its prior state, then again against a null prior state (the "create"
// half). The second call carries the private data the first returned, so a
// claim token there says "this is me again", and -replace, a target change,
// create_before_destroy or tainting never see their own claim as another
// connection.

// subsystemKey names a subsystem as the kernel's duplicate rule sees it:
// transport, address, port and NQN. Addresses compare by value, host names
// without regard to case.
type subsystemKey struct {
	transport, traddr, trsvcid, nqn string
}

func newSubsystemKey(t nvme.Target) subsystemKey {
	addr := strings.ToLower(strings.TrimSuffix(t.TrAddr, "."))
	if a, err := netip.ParseAddr(t.TrAddr); err == nil {
		addr = a.Unmap().String()
	}
	return subsystemKey{transport: t.Transport, traddr: addr, trsvcid: t.TrSvcID, nqn: t.NQN}
}

func (k subsystemKey) String() string {
	return fmt.Sprintf("subsystem %s at %s %s port %s", k.nqn, k.transport, k.traddr, k.trsvcid)
}

// claim is one connection's hold on a subsystem.
type claim struct {
	id         int
	namespaces []string // its namespace names, to tell the user which one it is
}

// subsystemRegistry is one walk's claims.
type subsystemRegistry struct {
	mu     sync.Mutex
	nonce  string // tells this walk's tokens from older ones kept in state
	next   int
	claims map[subsystemKey]claim
}

func newSubsystemRegistry() (*subsystemRegistry, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("make the subsystem registry's nonce: %w", err)
	}
	return &subsystemRegistry{nonce: hex.EncodeToString(b), claims: make(map[subsystemKey]claim)}, nil
}

// conflict is a claim refused: the other connection's hold, and on which
// of the keys asked for.
type conflict struct {
	holder claim
	key    subsystemKey
}

// claim takes keys, one per portal of a connection, for a connection with
// the given namespaces: all of them or none. token is what an earlier call
// of the same walk returned for the same resource, or "". It returns the
// token to hand back to Terraform, or the conflict when another connection
// holds one of the keys.
func (r *subsystemRegistry) claim(keys []subsystemKey, token string, namespaces []string) (string, *conflict) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, own := r.ownID(token)
	for _, k := range keys {
		if c, held := r.claims[k]; held && (!own || c.id != id) {
			return "", &conflict{holder: c, key: k}
		}
	}
	if own {
		// The same resource again: drop the keys it no longer plans.
		for k, c := range r.claims {
			if c.id == id && !slices.Contains(keys, k) {
				delete(r.claims, k)
			}
		}
	} else {
		r.next++
		id, token = r.next, r.nonce+"/"+strconv.Itoa(r.next)
	}
	for _, k := range keys {
		r.claims[k] = claim{id: id, namespaces: namespaces}
	}
	return token, nil
}

// ownID returns the claim id in a token of this walk.
func (r *subsystemRegistry) ownID(token string) (int, bool) {
	nonce, id, ok := strings.Cut(token, "/")
	if !ok || nonce != r.nonce {
		return 0, false
	}
	n, err := strconv.Atoi(id)
	return n, err == nil
}

// conflictDetail says what the user must do about a second connection to
// a subsystem.
func conflictDetail(key subsystemKey, holder claim, mine []string) string {
	return fmt.Sprintf("Another nvme_connection of this configuration, the one with %s, connects to the same %s "+
		"as this one (with %s).\n\n"+
		"The Linux kernel keeps one controller per host and subsystem, with one set of connection settings "+
		"(ctrl_loss_tmo, reconnect_delay, keep_alive_tmo, fast_io_fail_tmo, queues, digests, tos): two declarations could "+
		"disagree, and the node that stages volumes of both would refuse the second one. Merge them into one "+
		"nvme_connection that lists all their namespaces in its namespaces map.",
		namespacesPhrase(holder.namespaces), key, namespacesPhrase(mine))
}

// namespacesPhrase names a connection by its namespaces, the one handle
// the provider has on it: the first few, which find it in a configuration.
func namespacesPhrase(names []string) string {
	const shown = 5
	if names == nil {
		return "namespaces known only at apply"
	}
	q := make([]string, 0, shown+1)
	for _, n := range names[:min(len(names), shown)] {
		q = append(q, strconv.Quote(nvme.Truncate(n)))
	}
	if len(names) > shown {
		q = append(q, fmt.Sprintf("and %d more", len(names)-shown))
	}
	return "namespaces " + strings.Join(q, ", ")
}
