package provider

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// protoV6Providers serves the provider in-process to the real terraform
// binary the acceptance tests drive.
var protoV6Providers = map[string]func() (tfprotov6.ProviderServer, error){
	TypeName: providerserver.NewProtocol6WithError(New("test")()),
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

// roundTrip checks that the volume_context in the state is one the plugin
// parses into exactly the configured volume, and that it is already in
// canonical form (rendering the parsed volume gives it back unchanged).
func roundTrip(address string, want nvme.Volume) statecheck.StateCheck {
	return roundTripCheck{address: address, want: want}
}

type roundTripCheck struct {
	address string
	want    nvme.Volume
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
	raw, ok := req.State.Values.RootModule.Resources[idx].AttributeValues["volume_context"].(map[string]any)
	if !ok {
		resp.Error = fmt.Errorf("%s: volume_context is not a map", c.address)
		return
	}
	vc := make(map[string]string, len(raw))
	for k, v := range raw {
		s, ok := v.(string)
		if !ok {
			resp.Error = fmt.Errorf("%s: volume_context[%s] is %T, not a string", c.address, k, v)
			return
		}
		vc[k] = s
	}
	got, err := nvme.ParseVolumeContext(vc)
	if err != nil {
		resp.Error = fmt.Errorf("%s: the plugin would reject volume_context %v: %w", c.address, vc, err)
		return
	}
	if !reflect.DeepEqual(got, c.want) {
		resp.Error = fmt.Errorf("%s: volume_context parses to\n%s\nwant\n%s", c.address, describe(got), describe(c.want))
		return
	}
	if canonical := got.ToVolumeContext(); !reflect.DeepEqual(canonical, vc) {
		resp.Error = fmt.Errorf("%s: volume_context %v is not canonical; the core renders %v", c.address, vc, canonical)
	}
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
	return fmt.Sprintf("target %+v namespace %+v ctrl_loss_tmo=%d reconnect_delay=%d keep_alive_tmo=%s fast_io_fail_tmo=%s nr_io_queues=%s queue_size=%s tos=%s hdr_digest=%t data_digest=%t",
		v.Target, v.Namespace, c.CtrlLossTmo, c.ReconnectDelay, deref(c.KeepAliveTmo), deref(c.FastIOFailTmo),
		deref(c.NrIOQueues), deref(c.QueueSize), deref(c.TOS), c.HdrDigest, c.DataDigest)
}

// testVolume is the volume of the minimal test connection with the
// plugin's defaults; tests adjust it to what they configure.
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
