package provider

import (
	"sync"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

func TestNewSubsystemKey(t *testing.T) {
	base := nvme.Target{Transport: "tcp", TrAddr: "192.0.2.10", TrSvcID: "4420", NQN: "nqn.2014-08.org.example:a"}
	with := func(f func(*nvme.Target)) nvme.Target { tt := base; f(&tt); return tt }
	same := []nvme.Target{
		with(func(t *nvme.Target) { t.TrAddr = "::ffff:192.0.2.10" }),
		with(func(t *nvme.Target) { t.HostIface = "eth1" }), // the source does not make another subsystem
		with(func(t *nvme.Target) { t.HostTrAddr = "192.0.2.1" }),
	}
	for _, s := range same {
		if newSubsystemKey(s) != newSubsystemKey(base) {
			t.Errorf("%+v is another subsystem than %+v", s, base)
		}
	}
	other := []nvme.Target{
		with(func(t *nvme.Target) { t.TrSvcID = "4421" }),
		with(func(t *nvme.Target) { t.TrAddr = "192.0.2.11" }),
		with(func(t *nvme.Target) { t.NQN = "nqn.2014-08.org.example:A" }), // NQNs compare exactly, as the kernel does
	}
	for _, o := range other {
		if newSubsystemKey(o) == newSubsystemKey(base) {
			t.Errorf("%+v is the same subsystem as %+v", o, base)
		}
	}
	v6 := []string{"2001:db8::10", "2001:DB8:0:0::10", "2001:0db8::0010"}
	for _, a := range v6[1:] {
		if newSubsystemKey(nvme.Target{TrAddr: a}) != newSubsystemKey(nvme.Target{TrAddr: v6[0]}) {
			t.Errorf("%s and %s differ", a, v6[0])
		}
	}
	if newSubsystemKey(nvme.Target{TrAddr: "Storage.Example."}) != newSubsystemKey(nvme.Target{TrAddr: "storage.example"}) {
		t.Error("host names differ by case or a final dot")
	}
}

func TestSubsystemRegistry(t *testing.T) {
	r, err := newSubsystemRegistry()
	if err != nil {
		t.Fatal(err)
	}
	a := subsystemKey{"tcp", "192.0.2.10", "4420", "nqn.x:a"}
	b := subsystemKey{"tcp", "192.0.2.10", "4420", "nqn.x:b"}

	tokenA, holder := r.claim([]subsystemKey{a}, "", []string{"one"})
	if holder != nil || tokenA == "" {
		t.Fatalf("first claim: %q, %+v", tokenA, holder)
	}
	if _, holder := r.claim([]subsystemKey{a}, "", []string{"two"}); holder == nil || holder.holder.namespaces[0] != "one" {
		t.Fatalf("second claim of a: holder %+v, want the first", holder)
	}
	// The same resource planned again in this walk keeps its claim.
	if token, holder := r.claim([]subsystemKey{a}, tokenA, []string{"one"}); holder != nil || token != tokenA {
		t.Fatalf("claim again with its token: %q, %+v", token, holder)
	}
	// A token of another walk (kept in private state) is no token.
	if _, holder := r.claim([]subsystemKey{a}, "0123456789abcdef/1", []string{"three"}); holder == nil {
		t.Fatal("a foreign token took over a claimed subsystem")
	}
	// A resource whose planned target changed between its two calls moves
	// its claim, and frees the old one.
	if token, holder := r.claim([]subsystemKey{b}, tokenA, []string{"one"}); holder != nil || token != tokenA {
		t.Fatalf("move claim to b: %q, %+v", token, holder)
	}
	if _, holder := r.claim([]subsystemKey{a}, "", []string{"four"}); holder != nil {
		t.Fatalf("a is still held by %+v after its holder moved", holder)
	}
	// Moving onto a subsystem another connection holds is refused.
	if _, holder := r.claim([]subsystemKey{a}, tokenA, []string{"one"}); holder == nil || holder.holder.namespaces[0] != "four" {
		t.Fatalf("move onto a held subsystem: holder %+v", holder)
	}
}

// TestSubsystemRegistryPortals: a connection with several portals holds
// the subsystem at each; another connection reaching it through any one of
// them is refused on that portal, and a refused claim takes nothing.
func TestSubsystemRegistryPortals(t *testing.T) {
	r, err := newSubsystemRegistry()
	if err != nil {
		t.Fatal(err)
	}
	port := func(addr string) subsystemKey { return subsystemKey{"tcp", addr, "4420", "nqn.x:a"} }
	a, b, c := port("192.0.2.10"), port("198.51.100.10"), port("203.0.113.10")

	tokenAB, refused := r.claim([]subsystemKey{a, b}, "", []string{"ab"})
	if refused != nil {
		t.Fatalf("first claim: %+v", refused)
	}
	// Another connection whose first portal is the first one's second.
	if _, refused := r.claim([]subsystemKey{b}, "", []string{"b"}); refused == nil || refused.key != b || refused.holder.namespaces[0] != "ab" {
		t.Fatalf("claim of b: %+v, want refused on b by ab", refused)
	}
	// Refused on its second portal: its first is not taken either.
	if _, refused := r.claim([]subsystemKey{c, a}, "", []string{"ca"}); refused == nil || refused.key != a {
		t.Fatalf("claim of c, a: %+v, want refused on a", refused)
	}
	if _, refused := r.claim([]subsystemKey{c}, "", []string{"c"}); refused != nil {
		t.Fatalf("c was left claimed by a refused claim: %+v", refused)
	}
	// The first connection drops its second portal in a re-plan: b is free.
	if token, refused := r.claim([]subsystemKey{a}, tokenAB, []string{"ab"}); refused != nil || token != tokenAB {
		t.Fatalf("re-plan with a only: %q, %+v", token, refused)
	}
	if _, refused := r.claim([]subsystemKey{b}, "", []string{"b"}); refused != nil {
		t.Fatalf("b is still held after its holder dropped it: %+v", refused)
	}
}

// TestSubsystemRegistryConcurrent: terraform plans up to ten resources at a
// time; of many connections to one subsystem planned at once, exactly one
// holds it.
func TestSubsystemRegistryConcurrent(t *testing.T) {
	r, err := newSubsystemRegistry()
	if err != nil {
		t.Fatal(err)
	}
	key := subsystemKey{"tcp", "192.0.2.10", "4420", "nqn.x:a"}
	const n = 64
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		holders int
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, holder := r.claim([]subsystemKey{key}, "", nil); holder == nil {
				mu.Lock()
				holders++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if holders != 1 {
		t.Fatalf("%d of %d concurrent claims succeeded, want 1", holders, n)
	}
}

func TestNamespacesPhrase(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{nil, "namespaces known only at apply"},
		{[]string{"a"}, `namespaces "a"`},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, `namespaces "a", "b", "c", "d", "e", and 2 more`},
	}
	for _, tt := range tests {
		if got := namespacesPhrase(tt.names); got != tt.want {
			t.Errorf("namespacesPhrase(%v) = %q, want %q", tt.names, got, tt.want)
		}
	}
}
