// Package nomadvolume reads Nomad CSI volume specifications the way
// `nomad volume register` does (HCL v1, or JSON), into the api module's
// CSIVolume, and turns a volume plus a claim into the CSI requests Nomad's
// client sends (../../../shared/NOMAD-CLIENT.md §3.1, §5). It also reports
// what Nomad accepts without a word but drops: unknown keys, legacy
// top-level modes, extra mount_options blocks.
//
// Nomad's own parser is BUSL-licensed; this is the project's reading of
// its behaviour, over the MPL-2.0 HCL v1 parser Nomad builds with
// (v1.0.1-nomad-1) and the same mapstructure decoding.
package nomadvolume

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	humanize "github.com/dustin/go-humanize"
	"github.com/go-viper/mapstructure/v2"
	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/nomad/api"
)

// Spec is one volume file as Nomad reads it, with what Nomad drops.
type Spec struct {
	// File names the source in messages.
	File string
	// Volume is what `nomad volume register` sends to the server.
	Volume *api.CSIVolume
	// Dropped holds the top-level keys Nomad ignores silently: they are
	// no field of a CSI volume (a typo such as `extrnal_id`, or the legacy
	// top-level access_mode/attachment_mode), sorted.
	Dropped []string
	// Ignored describes other input Nomad reads past without a word.
	Ignored []string
}

// ParseFile reads and parses path.
func ParseFile(path string) (*Spec, error) {
	src, err := os.ReadFile(path) //nolint:gosec // the operator names the file to read
	if err != nil {
		return nil, fmt.Errorf("read volume spec: %w", err)
	}
	return Parse(src, path)
}

// Keys the CLI takes out of the map before decoding the rest, and decodes
// itself (volume_register_csi.go: capability, mount_options, capacity_*,
// topology_request; type only dispatches).
var decodedApart = []string{"capability", "mount_options", "capacity_max", "capacity_min", "topology_request", "type"}

// Parse reads one volume specification. Errors name the file and the key.
func Parse(src []byte, file string) (*Spec, error) {
	root, err := hcl.ParseBytes(src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	list, ok := root.Node.(*ast.ObjectList)
	if !ok {
		return nil, fmt.Errorf("%s: the volume spec must be an object", file)
	}
	if err := checkType(list); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}

	var m map[string]any
	if err := hcl.DecodeObject(&m, root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, k := range decodedApart {
		delete(m, k)
	}
	vol := &api.CSIVolume{}
	var md mapstructure.Metadata
	// WeakDecode, as the CLI calls it, plus Metadata to learn which keys it
	// left unused: the decoding itself is the same.
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{WeaklyTypedInput: true, Result: vol, Metadata: &md})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	spec := &Spec{File: file, Volume: vol, Dropped: slices.Sorted(slices.Values(md.Unused))}

	var errs []error
	for _, f := range []func(*ast.ObjectList, *Spec) error{decodeCapacity, decodeCapabilities, decodeMountOptions, decodeTopology} {
		if err := f(list, spec); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return spec, nil
}

// checkType is the CLI's dispatch: only "csi" volumes go on; a host volume
// is not this plugin's.
func checkType(list *ast.ObjectList) error {
	var t struct {
		Type string `hcl:"type"`
	}
	if err := hcl.DecodeObject(&t, list); err != nil {
		return fmt.Errorf("type: %w", err)
	}
	switch t.Type {
	case api.CSIVolumeTypeCSI:
		return nil
	case "":
		return errors.New(`type is required: "csi" (nomad volume register dispatches on it)`)
	default:
		return fmt.Errorf(`type %q: nvmeof volumes are type "csi"`, t.Type)
	}
}

func decodeCapacity(list *ast.ObjectList, spec *Spec) error {
	var errs []error
	for _, c := range []struct {
		key string
		out *int64
	}{{"capacity_min", &spec.Volume.RequestedCapacityMin}, {"capacity_max", &spec.Volume.RequestedCapacityMax}} {
		items := list.Filter(c.key).Items
		if len(items) == 0 {
			continue
		}
		var s string
		if err := hcl.DecodeObject(&s, items[0].Val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.key, err))
			continue
		}
		n, err := humanize.ParseBytes(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", c.key, s, err))
			continue
		}
		if n > 1<<63-1 {
			errs = append(errs, fmt.Errorf("%s %q: too large", c.key, s))
			continue
		}
		*c.out = int64(n)
	}
	return errors.Join(errs...)
}

// decodeCapabilities: every capability block, each with only
// access_mode and attachment_mode.
func decodeCapabilities(list *ast.ObjectList, spec *Spec) error {
	var errs []error
	for i, item := range list.Filter("capability").Items {
		if err := onlyKeys(item.Val, "access_mode", "attachment_mode"); err != nil {
			errs = append(errs, fmt.Errorf("capability[%d]: %w", i, err))
			continue
		}
		c := &api.CSIVolumeCapability{}
		if err := hcl.DecodeObject(c, item.Val); err != nil {
			errs = append(errs, fmt.Errorf("capability[%d]: %w", i, err))
			continue
		}
		spec.Volume.RequestedCapabilities = append(spec.Volume.RequestedCapabilities, c)
	}
	return errors.Join(errs...)
}

// decodeMountOptions: the first mount_options block; Nomad reads no other.
func decodeMountOptions(list *ast.ObjectList, spec *Spec) error {
	items := list.Filter("mount_options").Items
	if len(items) == 0 {
		return nil
	}
	if len(items) > 1 {
		spec.Ignored = append(spec.Ignored, fmt.Sprintf("%d mount_options blocks: Nomad uses the first and ignores the other %d", len(items), len(items)-1))
	}
	if err := onlyKeys(items[0].Val, "fs_type", "mount_flags"); err != nil {
		return fmt.Errorf("mount_options: %w", err)
	}
	mo := &api.CSIMountOptions{}
	if err := hcl.DecodeObject(mo, items[0].Val); err != nil {
		return fmt.Errorf("mount_options: %w", err)
	}
	mo.ExtraKeysHCL = nil
	spec.Volume.MountOptions = mo
	return nil
}

// decodeTopology: topology_request { required|preferred { topology {
// segments { k = v } } } }.
func decodeTopology(list *ast.ObjectList, spec *Spec) error {
	items := list.Filter("topology_request").Items
	if len(items) == 0 {
		return nil
	}
	if err := onlyKeys(items[0].Val, "required", "preferred"); err != nil {
		return fmt.Errorf("topology_request: %w", err)
	}
	obj, ok := items[0].Val.(*ast.ObjectType)
	if !ok {
		return errors.New("topology_request must be a block")
	}
	req := &api.CSITopologyRequest{}
	var errs []error
	for _, part := range []struct {
		key string
		out *[]*api.CSITopology
	}{{"required", &req.Required}, {"preferred", &req.Preferred}} {
		for _, p := range obj.List.Filter(part.key).Items {
			inner, ok := p.Val.(*ast.ObjectType)
			if !ok {
				errs = append(errs, fmt.Errorf("topology_request.%s must be a block", part.key))
				continue
			}
			for _, top := range inner.List.Filter("topology").Items {
				if err := onlyKeys(top.Val, "segments"); err != nil {
					errs = append(errs, fmt.Errorf("topology_request.%s.topology: %w", part.key, err))
					continue
				}
				var t struct {
					Segments map[string]string `hcl:"segments"`
				}
				if err := hcl.DecodeObject(&t, top.Val); err != nil {
					errs = append(errs, fmt.Errorf("topology_request.%s.topology: %w", part.key, err))
					continue
				}
				*part.out = append(*part.out, &api.CSITopology{Segments: t.Segments})
			}
		}
	}
	spec.Volume.RequestedTopologies = req
	return errors.Join(errs...)
}

// onlyKeys refuses keys other than allowed in a block, as the CLI's
// CheckHCLKeys does.
func onlyKeys(node ast.Node, allowed ...string) error {
	obj, ok := node.(*ast.ObjectType)
	if !ok {
		return errors.New("must be a block")
	}
	var errs []error
	for _, item := range obj.List.Items {
		key := item.Keys[0].Token.Value().(string) //nolint:forcetypeassert // an object key is always a string token
		if !slices.Contains(allowed, key) {
			errs = append(errs, fmt.Errorf("invalid key %q (allowed: %s)", key, strings.Join(allowed, ", ")))
		}
	}
	return errors.Join(errs...)
}
