package provider

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// protoV6Providers serves the provider in-process to the real terraform
// binary the acceptance tests drive.
var protoV6Providers = map[string]func() (tfprotov6.ProviderServer, error){
	TypeName: func() (tfprotov6.ProviderServer, error) { return NewServer("test")(), nil },
}

const (
	testHostNQN = "nqn.2014-08.org.nvmexpress:uuid:6b1a5b8e-2c1f-4a5e-9d3c-1f2e3d4c5b6a"
	testHostID  = "6b1a5b8e-2c1f-4a5e-9d3c-1f2e3d4c5b6a"
	testNQN     = "nqn.2014-08.org.example:vol1"
	testAddr    = "192.0.2.10"
)

// providerWithHost is a provider block naming the node's host identity, so
// fabrics_options and connect_args can be rendered.
const providerWithHost = `
provider "nvme" {
  host_nqn = "` + testHostNQN + `"
  host_id  = "` + testHostID + `"
}
`

// coreError is the core's message for the one invalid setting in vc, as a
// pattern that tolerates the line wrapping and the "│" margin terraform
// puts around diagnostics. Tests derive every expected message this way:
// the provider must say exactly what the plugin would.
func coreError(t *testing.T, vc map[string]string, key string) *regexp.Regexp {
	t.Helper()
	_, err := nvme.ParseVolumeContext(vc)
	if err == nil {
		t.Fatalf("the core accepts %v; the test expects it to reject %s", vc, key)
	}
	for _, fe := range nvme.AsFieldErrors(err) {
		if fe.Key == key {
			return looseText(fe.Error())
		}
	}
	t.Fatalf("the core rejects %v, but not for %s: %v", vc, key, err)
	return nil
}

// looseText matches text word by word, whatever white space and diagnostic
// margins sit between the words.
func looseText(text string) *regexp.Regexp {
	words := strings.Fields(text)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return regexp.MustCompile(strings.Join(words, `[\s│]+`))
}

// baseContext is the volume context of the minimal test connection.
func baseContext(extra map[string]string) map[string]string {
	vc := map[string]string{nvme.KeyTrAddr: testAddr, nvme.KeyNQN: testNQN, nvme.KeyNSID: "1"}
	for k, v := range extra {
		vc[k] = v
	}
	return vc
}

// exactStrings is a knownvalue check for a map of strings.
func exactStrings(m map[string]string) knownvalue.Check {
	checks := make(map[string]knownvalue.Check, len(m))
	for k, v := range m {
		checks[k] = knownvalue.StringExact(v)
	}
	return knownvalue.MapExact(checks)
}

func intPtr(n int) *int { return &n }

// roundTrip checks that the volume context of each named namespace in the
// state is one the plugin parses into exactly the wanted volume, that it is
// already in canonical form (rendering the parsed volume gives it back
// unchanged), and that volume_contexts holds no other namespace.
func roundTrip(address string, want map[string]nvme.Volume) statecheck.StateCheck {
	return roundTripCheck{address: address, want: want}
}

type roundTripCheck struct {
	address string
	want    map[string]nvme.Volume
}

func (c roundTripCheck) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	if req.State == nil || req.State.Values == nil || req.State.Values.RootModule == nil {
		resp.Error = fmt.Errorf("%s: no state", c.address)
		return
	}
	idx := slices.IndexFunc(req.State.Values.RootModule.Resources, func(r *tfjson.StateResource) bool { return r.Address == c.address })
	if idx < 0 {
		resp.Error = fmt.Errorf("%s: not in the state", c.address)
		return
	}
	got, err := volumeContextsOf(req.State.Values.RootModule.Resources[idx].AttributeValues[attrVolumeContexts])
	if err != nil {
		resp.Error = fmt.Errorf("%s: %w", c.address, err)
		return
	}
	resp.Error = checkVolumeContexts(got, c.want)
}

// volumeContextsOf reads volume_contexts as decoded from terraform's JSON.
func volumeContextsOf(raw any) (map[string]map[string]string, error) {
	byName, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("volume_contexts is %T, not a map", raw)
	}
	out := make(map[string]map[string]string, len(byName))
	for name, ctx := range byName {
		m, ok := ctx.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("volume_contexts[%s] is %T, not a map", name, ctx)
		}
		vc := make(map[string]string, len(m))
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("volume_contexts[%s][%s] is %T, not a string", name, k, v)
			}
			vc[k] = s
		}
		out[name] = vc
	}
	return out, nil
}

// checkVolumeContexts compares volume contexts with the volumes they must
// parse to, by name.
func checkVolumeContexts(got map[string]map[string]string, want map[string]nvme.Volume) error {
	if len(got) != len(want) {
		return fmt.Errorf("volume_contexts has the namespaces %v, want %d of them", slices.Sorted(maps.Keys(got)), len(want))
	}
	for name, w := range want {
		vc, ok := got[name]
		if !ok {
			return fmt.Errorf("volume_contexts lacks %q", name)
		}
		vol, err := nvme.ParseVolumeContext(vc)
		if err != nil {
			return fmt.Errorf("the plugin would reject volume_contexts[%q] %v: %w", name, vc, err)
		}
		if !reflect.DeepEqual(vol, w) {
			return fmt.Errorf("volume_contexts[%q] parses to\n%s\nwant\n%s", name, describe(vol), describe(w))
		}
		if canonical := vol.ToVolumeContext(); !reflect.DeepEqual(canonical, vc) {
			return fmt.Errorf("volume_contexts[%q] %v is not canonical; the core renders %v", name, vc, canonical)
		}
	}
	return nil
}

// describe prints a volume with its optional settings dereferenced.
func describe(v nvme.Volume) string {
	deref := func(p *int) string {
		if p == nil {
			return "unset"
		}
		return fmt.Sprint(*p)
	}
	c := v.Config
	return fmt.Sprintf("format_policy=%q target %+v namespace %+v ctrl_loss_tmo=%d reconnect_delay=%d keep_alive_tmo=%s fast_io_fail_tmo=%s nr_io_queues=%s queue_size=%s tos=%s hdr_digest=%t data_digest=%t",
		v.FormatPolicy, v.Target, v.Namespace, c.CtrlLossTmo, c.ReconnectDelay, deref(c.KeepAliveTmo), deref(c.FastIOFailTmo),
		deref(c.NrIOQueues), deref(c.QueueSize), deref(c.TOS), c.HdrDigest, c.DataDigest)
}

// testVolume is the volume of the minimal test connection's namespace
// with the plugin's defaults; tests adjust it to what they configure.
func testVolume(adjust func(*nvme.Volume)) nvme.Volume {
	v := nvme.Volume{
		Target:    nvme.Target{Transport: nvme.TransportTCP, TrAddr: testAddr, TrSvcID: nvme.DefaultTrSvcID, NQN: testNQN},
		Config:    nvme.DefaultConnectionConfig(),
		Namespace: nvme.NamespaceSelector{NSID: 1},
	}
	if adjust != nil {
		adjust(&v)
	}
	return v
}
