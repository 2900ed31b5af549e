package provider

import (
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// attrNamespaces is the map of namespaces inside a connection.
const attrNamespaces = "namespaces"

// connectionInput is one nvme_connection's settings as volume-context text,
// read from a configuration or a plan, before anything is checked.
type connectionInput struct {
	settings map[string]string // known values by volume-context key
	pending  map[string]bool   // keys whose values are known only at apply
	// namespaces by name; namespacesUnknown when the map itself is known
	// only at apply (its names are then unknown too).
	namespaces        map[string]namespaceInput
	namespacesUnknown bool
}

// namespaceInput is one entry of the namespaces map.
type namespaceInput struct {
	settings map[string]string
	pending  map[string]bool
	unknown  bool // the whole entry is known only at apply
}

// readConnection decodes an nvme_connection object's attributes.
func readConnection(attrs map[string]tftypes.Value) (connectionInput, error) {
	in := connectionInput{settings: make(map[string]string), pending: make(map[string]bool)}
	if err := readSettings(connectionSettings, attrs, in.settings, in.pending); err != nil {
		return in, err
	}
	if err := readPortals(attrs, in.settings, in.pending); err != nil {
		return in, err
	}
	raw := attrs[attrNamespaces]
	if !raw.IsKnown() {
		in.namespacesUnknown = true
		return in, nil
	}
	in.namespaces = make(map[string]namespaceInput)
	if raw.IsNull() {
		return in, nil
	}
	var entries map[string]tftypes.Value
	if err := raw.As(&entries); err != nil {
		return in, fmt.Errorf("read %s: %w", attrNamespaces, err)
	}
	for name, entry := range entries {
		ns := namespaceInput{settings: make(map[string]string), pending: make(map[string]bool)}
		switch {
		case !entry.IsKnown():
			ns.unknown = true
		case entry.IsNull():
			// No selector at all: the core says what is missing.
		default:
			var fields map[string]tftypes.Value
			if err := entry.As(&fields); err != nil {
				return in, fmt.Errorf("read %s[%q]: %w", attrNamespaces, name, err)
			}
			if err := readSettings(namespaceSettings, fields, ns.settings, ns.pending); err != nil {
				return in, fmt.Errorf("%s[%q]: %w", attrNamespaces, name, err)
			}
		}
		in.namespaces[name] = ns
	}
	return in, nil
}

// names returns the namespace names in order.
func (in connectionInput) names() []string {
	return slices.Sorted(maps.Keys(in.namespaces))
}

// checkedConnection is what the core made of a connectionInput.
type checkedConnection struct {
	// connection is the connection's own settings parsed with a stand-in
	// namespace; nil while a setting is unknown or invalid. Its target and
	// config are those of every namespace.
	connection *nvme.Volume
	// volumes holds the namespaces whose volume context is complete and
	// valid, by name.
	volumes map[string]nvme.Volume
}

// namespacePlaceholder stands in for a namespace when only the connection's
// own settings are checked; probeConnection stands in for the connection
// when only a namespace's are. Both are valid, so every error of a parse
// belongs to the part under test.
var (
	namespacePlaceholder = map[string]string{nvme.KeyNSID: "1"}
	probeConnection      = map[string]string{nvme.KeyTrAddr: "192.0.2.1", nvme.KeyNQN: "nqn.2014-08.org.example:probe"}
)

// namespaceName is what a namespace may be called: the name becomes a
// Nomad volume id in the examples, a map key in the outputs and a part of
// the import id, so it is kept to characters all of them take as they are.
var namespaceName = regexp.MustCompile(`^[A-Za-z0-9_.\[\]-]+$`)

const namespaceNameRule = "must be one or more letters, digits, '-', '_', '.', '[' or ']'"

// check parses every namespace's volume context with the core, as the
// plugin will, and reports each problem once, on the attribute that sets
// the offending key. origin tells where inherited values came from.
func (in connectionInput) check(origin map[string]string) (checkedConnection, diag.Diagnostics) {
	var (
		out   = checkedConnection{volumes: make(map[string]nvme.Volume)}
		diags diag.Diagnostics
		seen  = make(map[string]bool) // diagnostics already given, by path and text
	)
	report := func(ds diag.Diagnostics) {
		for _, d := range ds {
			id := fmt.Sprint(d.Summary(), d.Detail())
			if p, ok := d.(diag.DiagnosticWithPath); ok {
				id = p.Path().String() + id
			}
			if !seen[id] {
				seen[id] = true
				diags.Append(d)
			}
		}
	}

	connVC := merged(in.settings, namespacePlaceholder)
	connVol, err := nvme.ParseVolumeContext(connVC)
	if err != nil {
		report(fieldReporter{pathOf: connectionPath, pending: in.pending, origin: origin}.report(err))
	} else if len(in.pending) == 0 {
		out.connection = &connVol
	}

	if !in.namespacesUnknown && len(in.namespaces) == 0 {
		diags.AddAttributeError(path.Root(attrNamespaces), "No namespaces",
			"a connection declares at least one namespace of its subsystem: namespaces = { name = { nsid = 1 } }")
	}
	identities := make(map[string]string) // "nsid 1" -> the first name selecting it
	for _, name := range in.names() {
		ns := in.namespaces[name]
		nsPath := path.Root(attrNamespaces).AtMapKey(name)
		if !namespaceName.MatchString(name) {
			diags.AddAttributeError(nsPath, "Invalid namespace name", fmt.Sprintf("invalid namespace name %q: %s", nvme.Truncate(name), namespaceNameRule))
		}
		if ns.unknown {
			continue
		}
		nsReporter := fieldReporter{pathOf: namespacePath(name), pending: ns.pending}
		probe, err := nvme.ParseVolumeContext(merged(probeConnection, ns.settings))
		if err != nil {
			report(nsReporter.report(err))
			continue
		}
		if len(ns.pending) > 0 {
			continue
		}
		for _, id := range selectorIdentities(probe.Namespace) {
			if first, dup := identities[id]; dup {
				diags.AddAttributeError(nsPath, "Namespace declared twice", fmt.Sprintf(
					"namespaces %q and %q both select %s of this subsystem: two volumes on one namespace would be mounted "+
						"twice and overwrite each other; keep one of them", nvme.Truncate(first), nvme.Truncate(name), id))
				continue
			}
			identities[id] = name
		}
		if out.connection == nil {
			continue
		}
		vol, err := nvme.ParseVolumeContext(merged(in.settings, ns.settings))
		if err != nil {
			// Only a rule joining a namespace key and a connection key gets
			// here: both parts passed on their own.
			r := fieldReporter{pathOf: namespacePath(name), origin: origin}
			report(r.report(err))
			continue
		}
		out.volumes[name] = vol
	}
	return out, diags
}

// target is the connection's target once every key naming it is known.
// Called after check found no error, the values are valid.
func (in connectionInput) target() (nvme.Target, bool) {
	for _, k := range identityKeys {
		if _, ok := in.settings[k]; !ok || in.pending[k] {
			return nvme.Target{}, false
		}
	}
	return nvme.Target{
		Transport: in.settings[nvme.KeyTransport], TrAddr: in.settings[nvme.KeyTrAddr],
		TrSvcID: in.settings[nvme.KeyTrSvcID], NQN: in.settings[nvme.KeyNQN],
	}, true
}

// selectorIdentities are the ways a selector names its namespace.
func selectorIdentities(s nvme.NamespaceSelector) []string {
	var ids []string
	if s.NSID != 0 {
		ids = append(ids, fmt.Sprintf("nsid %d", s.NSID))
	}
	if s.UUID != "" {
		ids = append(ids, "uuid "+s.UUID)
	}
	if s.NGUID != "" {
		ids = append(ids, "nguid "+s.NGUID)
	}
	return ids
}

// connectionPath is where a diagnostic about a connection-level key goes:
// its attribute, or its element of additional_portals.
func connectionPath(key string) path.Path {
	if _, n, ok := portalOfKey(key); ok {
		return portalPath(n)
	}
	return path.Root(attributeForKey(key))
}

// namespacePath is where a diagnostic about a key goes when it arose in the
// namespace called name. A namespace's own keys point at its entry of the
// map: terraform (1.11) finds the source line of a map element, but not of
// an attribute inside one, which it would show as the resource's first
// line; the summary names the attribute.
func namespacePath(name string) func(string) path.Path {
	return func(key string) path.Path {
		if isNamespaceKey(key) {
			return path.Root(attrNamespaces).AtMapKey(name)
		}
		return connectionPath(key)
	}
}

// merged is a copy of a with b's entries added.
func merged(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	maps.Copy(m, a)
	maps.Copy(m, b)
	return m
}
