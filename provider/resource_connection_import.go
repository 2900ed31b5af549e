package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// The import id is the connection's settings, then each namespace after a
// ';' as its name, a ':' and its settings, all written as volume-context
// key=value pairs joined by commas:
//
//	traddr=192.0.2.10,nqn=nqn.2014-08.org.example:fleet;postgres:nsid=1,uuid=...;uploads:nsid=2
//
// Every namespace's settings together with the connection's are one volume
// context, parsed by the core exactly as the plugin parses a Nomad volume's
// context: what it leaves out takes the plugin's defaults, not the
// provider's defaults block. A namespace part may also carry connection
// settings (a Nomad volume's whole context, pasted), as long as all
// namespaces agree on them: one connection has one value of each.
// Values never hold ',' (the kernel splits its options on it, so the core
// refuses it) and names hold neither ';' nor ':' (namespaceName), so the
// split is unambiguous.

var errImportID = errors.New(`expected the connection's settings, then ";name:settings" for each namespace, settings ` +
	`written as volume-context key=value pairs joined by commas, for example ` +
	`"traddr=192.0.2.10,nqn=nqn.2014-08.org.example:fleet;postgres:nsid=1;uploads:nsid=2"`)

// importNamespace is one namespace part of an import id.
type importNamespace struct {
	name     string
	settings map[string]string
}

// parseImportID splits an import id into the connection's settings and
// each namespace's.
func parseImportID(id string) (map[string]string, []importNamespace, error) {
	parts := strings.Split(id, ";")
	conn, err := parsePairs(parts[0])
	if err != nil {
		return nil, nil, fmt.Errorf("connection settings: %w", err)
	}
	var namespaces []importNamespace
	seen := make(map[string]bool)
	for i, part := range parts[1:] {
		name, pairs, ok := strings.Cut(part, ":")
		if !ok {
			// Not echoed: a part without a name may be anything pasted.
			return nil, nil, fmt.Errorf("part %d after the connection's settings does not start with a namespace name and ':': %w", i+1, errImportID)
		}
		if !namespaceName.MatchString(name) {
			return nil, nil, fmt.Errorf("invalid namespace name %q: %s", nvme.Truncate(name), namespaceNameRule)
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("namespace %q is given twice: %w", name, errImportID)
		}
		seen[name] = true
		settings, err := parsePairs(pairs)
		if err != nil {
			return nil, nil, fmt.Errorf("namespace %q: %w", name, err)
		}
		namespaces = append(namespaces, importNamespace{name: name, settings: settings})
	}
	if len(namespaces) == 0 {
		return nil, nil, fmt.Errorf("no namespace given: %w", errImportID)
	}
	return conn, namespaces, nil
}

// parsePairs reads key=value pairs joined by commas; "" is no pair.
func parsePairs(s string) (map[string]string, error) {
	m := make(map[string]string)
	if s == "" {
		return m, nil
	}
	for i, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			// Not echoed: what is not a pair may be a key pasted by mistake.
			return nil, fmt.Errorf("setting %d is not a key=value pair: %w", i+1, errImportID)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s is given twice: %w", nvme.Truncate(k), errImportID)
		}
		m[k] = v
	}
	return m, nil
}

// importVolumes parses each namespace's volume context with the core and
// checks that they are one connection.
func importVolumes(conn map[string]string, namespaces []importNamespace) (map[string]nvme.Volume, error) {
	vols := make(map[string]nvme.Volume, len(namespaces))
	var first importNamespace
	for i, ns := range namespaces {
		vc := make(map[string]string, len(conn)+len(ns.settings))
		for k, v := range conn {
			vc[k] = v
		}
		for k, v := range ns.settings {
			if cv, both := conn[k]; both && cv != v {
				// The values stay out: a key this provider does not know may
				// be a secret put in the wrong place.
				return nil, fmt.Errorf("namespace %q and the connection set %s to different values: give it once", ns.name, nvme.Truncate(k))
			}
			vc[k] = v
		}
		vol, err := nvme.ParseVolumeContext(vc)
		if err != nil {
			return nil, fmt.Errorf("namespace %q: %w", ns.name, err)
		}
		if i == 0 {
			first = ns
		} else if err := sameConnection(first.name, vols[first.name], ns.name, vol); err != nil {
			return nil, err
		}
		vols[ns.name] = vol
	}
	return vols, nil
}

// sameConnection refuses namespaces that would need two controllers.
func sameConnection(nameA string, a nvme.Volume, nameB string, b nvme.Volume) error {
	if a.Target != b.Target {
		return fmt.Errorf("namespaces %q and %q name different targets (%s and %s): import each subsystem into its own nvme_connection",
			nameA, nameB, connectionID(a.ToVolumeContext()), connectionID(b.ToVolumeContext()))
	}
	if !slices.Equal(a.MorePortals, b.MorePortals) {
		return fmt.Errorf("namespaces %q and %q name different portals: one connection has one set of portals", nameA, nameB)
	}
	if a.IOPolicy != b.IOPolicy {
		return fmt.Errorf("namespaces %q and %q disagree on iopolicy (%q and %q): the kernel keeps one per subsystem", nameA, nameB, a.IOPolicy, b.IOPolicy)
	}
	if diff := a.Config.Diff(b.Config); len(diff) > 0 {
		return fmt.Errorf("namespaces %q and %q disagree on %s: the kernel keeps one set of connection settings per controller, "+
			"so one connection has one value of each", nameA, nameB, strings.Join(diff, ", "))
	}
	return nil
}

// ImportState builds the whole state from the import id (see
// parseImportID); the checks and outputs are the plan's.
func (r *connectionResource) ImportState(_ context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	conn, namespaces, err := parseImportID(req.ID)
	if err == nil {
		var vols map[string]nvme.Volume
		if vols, err = importVolumes(conn, namespaces); err == nil {
			err = r.importState(resp, vols)
		}
	}
	if err != nil {
		resp.Diagnostics.AddError("Invalid import id", err.Error())
	}
}

func (r *connectionResource) importState(resp *resource.ImportStateResponse, vols map[string]nvme.Volume) error {
	objType, ok := resp.State.Raw.Type().(tftypes.Object)
	if !ok {
		return fmt.Errorf("the resource's type is %s, not an object", resp.State.Raw.Type())
	}
	nsMapType, ok := objType.AttributeTypes[attrNamespaces].(tftypes.Map)
	if !ok {
		return fmt.Errorf("%s is not a map in the resource's type", attrNamespaces)
	}
	attrs := make(map[string]tftypes.Value, len(objType.AttributeTypes))
	entries := make(map[string]tftypes.Value, len(vols))
	for name, vol := range vols {
		vc := vol.ToVolumeContext()
		if err := writeSettings(connectionSettings, vc, attrs); err != nil {
			return err
		}
		fields := make(map[string]tftypes.Value, len(namespaceSettings))
		if err := writeSettings(namespaceSettings, vc, fields); err != nil {
			return err
		}
		entries[name] = tftypes.NewValue(nsMapType.ElementType, fields)
	}
	attrs[attrNamespaces] = tftypes.NewValue(nsMapType, entries)
	portalsType, ok := objType.AttributeTypes[attrAdditionalPortals].(tftypes.List)
	if !ok {
		return fmt.Errorf("%s is not a list in the resource's type", attrAdditionalPortals)
	}
	for _, vol := range vols { // one connection: every volume has the same portals
		if err := writePortals(vol, portalsType, attrs); err != nil {
			return err
		}
		break
	}

	in, err := readConnection(attrs)
	if err != nil {
		return err
	}
	checked, diags := in.check(nil)
	if diags.HasError() {
		msgs := make([]string, 0, diags.ErrorsCount())
		for _, d := range diags.Errors() {
			msgs = append(msgs, d.Detail())
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	if err := setOutputs(attrs, in, checked, r.data.host); err != nil {
		return err
	}
	if err := tftypes.ValidateValue(objType, attrs); err != nil {
		return fmt.Errorf("build the imported state: %w", err)
	}
	resp.State.Raw = tftypes.NewValue(objType, attrs)
	return nil
}

// writeSettings sets the table's attributes from a canonical volume
// context, as a configuration naming exactly those values would plan:
// keys left out take the plugin's fallback, else null.
func writeSettings(table []setting, vc map[string]string, attrs map[string]tftypes.Value) error {
	for _, s := range table {
		text, ok := vc[s.key]
		if !ok {
			text = s.fallback
		}
		if text == "" {
			attrs[s.attribute()] = tftypes.NewValue(s.tfType(), nil)
			continue
		}
		v, err := s.value(text)
		if err != nil {
			return err
		}
		attrs[s.attribute()] = v
	}
	return nil
}
