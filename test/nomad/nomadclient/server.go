package nomadclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/nomad/api"
)

// Server is what the client asks of Nomad's servers, for one node:
// volume registration with the server's checks (§5.2), claims and their
// limits, placement gated on the plugin's health and
// max_volumes_per_node (§1.2, §1.3), and the repeats of node detach that
// the claim GC and `nomad volume detach` send (§3.3).
//
// Nomad sends NodeDetachVolume for the past claims of terminal
// allocations when its volume watcher or claim GC (every 5 min) gets to
// them, before or after the client's own unmount; here the claim of a
// terminal allocation is kept, with its modes, until ClaimGC or Detach
// sends it, so a test decides when the repeat arrives.
type Server struct {
	mu      sync.Mutex
	client  *Client
	volumes map[string]*volumeState
}

type volumeState struct {
	vol    *api.CSIVolume
	claims map[string]claim // by allocation
	past   map[string]claim // released client-side, not yet detached by the server
}

type claim struct {
	allocID    string
	write      bool
	access     api.CSIVolumeAccessMode
	attachment api.CSIVolumeAttachmentMode
}

// NewServer returns an empty server; a Client attaches itself.
func NewServer() *Server {
	return &Server{volumes: map[string]*volumeState{}}
}

func volumeKey(namespace, id string) string {
	if namespace == "" {
		namespace = api.DefaultNamespace
	}
	return namespace + "/" + id
}

// Register adds a volume as `nomad volume register` does, after the
// server's checks: an id, a plugin id, a capability; not both snapshot
// and clone; segments in every topology; a plugin some node fingerprinted.
func (s *Server) Register(vol *api.CSIVolume) error {
	var errs []error
	if vol.ID == "" {
		errs = append(errs, errors.New("missing volume ID"))
	}
	if vol.PluginID == "" {
		errs = append(errs, errors.New("missing plugin ID"))
	}
	if len(vol.RequestedCapabilities) == 0 {
		errs = append(errs, errors.New("must include at least one capability block"))
	}
	if vol.SnapshotID != "" && vol.CloneID != "" {
		errs = append(errs, errors.New("only one of snapshot_id and clone_id is allowed"))
	}
	if t := vol.RequestedTopologies; t != nil {
		for _, top := range append(slices.Clone(t.Required), t.Preferred...) {
			if len(top.Segments) == 0 {
				errs = append(errs, errors.New("topology is missing segments field"))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("volume validation failed: %w", err)
	}
	if _, ok := s.client.nodePlugin(vol.PluginID); !ok {
		return fmt.Errorf("no CSI plugin named: %s could be found", vol.PluginID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := *vol
	if v.Namespace == "" {
		v.Namespace = api.DefaultNamespace
	}
	// Registration takes the volume's topologies from the required ones
	// (csi_endpoint.go:345-352).
	if v.RequestedTopologies != nil {
		v.Topologies = v.RequestedTopologies.Required
	}
	k := volumeKey(v.Namespace, v.ID)
	if old, ok := s.volumes[k]; ok {
		if len(old.claims) > 0 && !equalMountOptions(old.vol.MountOptions, v.MountOptions) {
			return fmt.Errorf("volume %s: mount options cannot change while the volume is in use", v.ID)
		}
		if old.vol.ExternalID != v.ExternalID || old.vol.PluginID != v.PluginID {
			return fmt.Errorf("volume %s: external_id and plugin_id cannot change", v.ID)
		}
		if len(v.Context) == 0 {
			v.Context = old.vol.Context
		}
		old.vol = &v
		return nil
	}
	s.volumes[k] = &volumeState{vol: &v, claims: map[string]claim{}, past: map[string]claim{}}
	return nil
}

func equalMountOptions(a, b *api.CSIMountOptions) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.FSType == b.FSType && slices.Equal(a.MountFlags, b.MountFlags)
}

// Deregister removes an unclaimed volume.
func (s *Server) Deregister(namespace, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes[volumeKey(namespace, id)]
	if !ok {
		return fmt.Errorf("volume not found: %s", id)
	}
	if len(v.claims) > 0 {
		return fmt.Errorf("volume in use: %s", id)
	}
	delete(s.volumes, volumeKey(namespace, id))
	return nil
}

// Claims returns the allocations that hold claims on a volume.
func (s *Server) Claims(namespace, id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes[volumeKey(namespace, id)]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(v.claims))
}

// errMaxClaims is retryable: the client's claim backs off and tries again.
var errMaxClaims = errors.New("volume max claims reached")

// claimVolume records a claim and returns a copy of the volume, as the
// CSIVolume.Claim RPC does; a node-only plugin gets no controller publish,
// so the publish context is nil.
func (s *Server) claimVolume(namespace, id string, c claim) (*api.CSIVolume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes[volumeKey(namespace, id)]
	if !ok {
		return nil, fmt.Errorf("volume not found: %s", id)
	}
	if err := v.admit(c); err != nil {
		return nil, err
	}
	if len(v.claims) == 0 {
		v.vol.AccessMode, v.vol.AttachmentMode = c.access, c.attachment
	}
	v.claims[c.allocID] = c
	out := *v.vol
	return &out, nil
}

// admit applies the claim limits of the access modes.
func (v *volumeState) admit(c claim) error {
	if _, again := v.claims[c.allocID]; again {
		return nil
	}
	if len(v.claims) > 0 {
		if c.attachment != v.vol.AttachmentMode {
			return fmt.Errorf("volume %s is claimed with attachment mode %s: a claim cannot change it", v.vol.ID, v.vol.AttachmentMode)
		}
		multi := strings.HasPrefix(string(c.access), "multi-node") && strings.HasPrefix(string(v.vol.AccessMode), "multi-node")
		if c.access != v.vol.AccessMode && !multi {
			return fmt.Errorf("volume %s is claimed with access mode %s: a claim cannot change it", v.vol.ID, v.vol.AccessMode)
		}
	}
	writers, users := 0, len(v.claims)
	for _, other := range v.claims {
		if other.write {
			writers++
		}
	}
	switch c.access {
	case api.CSIVolumeAccessModeSingleNodeReader:
		if users > 0 {
			return errMaxClaims
		}
	case api.CSIVolumeAccessModeSingleNodeWriter, api.CSIVolumeAccessModeMultiNodeSingleWriter:
		if c.write && writers > 0 {
			return errMaxClaims
		}
	case api.CSIVolumeAccessModeMultiNodeReader:
		if c.write {
			return fmt.Errorf("volume %s: a %s claim cannot write", v.vol.ID, c.access)
		}
	}
	return nil
}

// release frees a claim after the client unmounted the volume (the
// client's Unpublish with state Unpublishing; no controller, so straight
// to ReadyToFree). The claim stays a past claim until the server has sent
// its own node detach for it.
func (s *Server) release(namespace, id, allocID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes[volumeKey(namespace, id)]
	if !ok {
		return
	}
	if c, ok := v.claims[allocID]; ok {
		v.past[allocID] = c
		delete(v.claims, allocID)
	}
	if len(v.claims) == 0 {
		v.vol.AccessMode, v.vol.AttachmentMode = "", ""
	}
}

// ClaimGC is a pass of the volume watcher / claim GC: NodeDetachVolume for
// every past claim, which repeats NodeUnpublish and NodeUnstage on the
// node. It returns what the node answered.
func (s *Server) ClaimGC(ctx context.Context) error {
	return s.detach(ctx, func(*volumeState) bool { return true })
}

// Detach is `nomad volume detach VOLUME NODE`: the same for one volume.
func (s *Server) Detach(ctx context.Context, namespace, id string) error {
	return s.detach(ctx, func(v *volumeState) bool { return volumeKey(v.vol.Namespace, v.vol.ID) == volumeKey(namespace, id) })
}

func (s *Server) detach(ctx context.Context, which func(*volumeState) bool) error {
	type job struct {
		vol *api.CSIVolume
		c   claim
	}
	var jobs []job
	s.mu.Lock()
	for _, k := range slices.Sorted(maps.Keys(s.volumes)) {
		v := s.volumes[k]
		if !which(v) {
			continue
		}
		for _, a := range slices.Sorted(maps.Keys(v.past)) {
			jobs = append(jobs, job{v.vol, v.past[a]})
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, j := range jobs {
		err := s.client.nodeDetachVolume(ctx, j.vol, j.c)
		if err != nil {
			errs = append(errs, fmt.Errorf("detach %s from allocation %.8s: %w", j.vol.ID, j.c.allocID, err))
			continue
		}
		s.mu.Lock()
		if v, ok := s.volumes[volumeKey(j.vol.Namespace, j.vol.ID)]; ok {
			delete(v.past, j.c.allocID)
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// feasible is the scheduler's CSI check for one allocation of a group
// (feasible.go:537-584): the volumes exist, the node's plugin is healthy,
// writer claims are free, and max_volumes_per_node is not exceeded.
func (s *Server) feasible(namespace string, vols []volumeClaimReq) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	perPlugin := map[string]map[string]bool{} // plugin → volumes claimed on the node
	for _, st := range s.volumes {
		if len(st.claims) > 0 {
			if perPlugin[st.vol.PluginID] == nil {
				perPlugin[st.vol.PluginID] = map[string]bool{}
			}
			perPlugin[st.vol.PluginID][st.vol.ID] = true
		}
	}
	for _, r := range vols {
		st, ok := s.volumes[volumeKey(namespace, r.volumeID)]
		if !ok {
			return fmt.Errorf("missing CSI Volume %s", r.volumeID)
		}
		info, ok := s.client.nodePlugin(st.vol.PluginID)
		if !ok || !info.Healthy {
			return fmt.Errorf("CSI plugin %s is unhealthy on client %s", st.vol.PluginID, s.client.cfg.NodeID)
		}
		if r.write && st.vol.AccessMode != api.CSIVolumeAccessModeMultiNodeMultiWriter {
			for _, c := range st.claims {
				if c.write {
					return fmt.Errorf("CSI volume %s has exhausted its available writer claims", r.volumeID)
				}
			}
		}
		if len(st.vol.Topologies) > 0 && !topologyMatch(st.vol.Topologies, info.NodeInfo) {
			return fmt.Errorf("CSI volume %s has topologies that client %s does not match", r.volumeID, s.client.cfg.NodeID)
		}
		used := perPlugin[st.vol.PluginID]
		if !used[st.vol.ID] && info.NodeInfo != nil && int64(len(used)) >= info.NodeInfo.MaxVolumes {
			return fmt.Errorf("CSI plugin %s has the maximum number of volumes on client %s", st.vol.PluginID, s.client.cfg.NodeID)
		}
	}
	return nil
}

// volumeClaimReq is one volume an allocation will claim.
type volumeClaimReq struct {
	volumeID string
	write    bool
}

// topologyMatch reports whether the node's accessible topology holds all
// the segments of one of the volume's topologies; a node that reports
// none matches none (structs/node.go:108-133).
func topologyMatch(tops []*api.CSITopology, node *api.CSINodeInfo) bool {
	if node == nil || node.AccessibleTopology == nil {
		return false
	}
	for _, top := range tops {
		all := true
		for k, v := range top.Segments {
			all = all && node.AccessibleTopology.Segments[k] == v
		}
		if all {
			return true
		}
	}
	return false
}
