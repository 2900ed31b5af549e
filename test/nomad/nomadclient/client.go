package nomadclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/api"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
)

// Config is one Nomad client agent.
type Config struct {
	// DataDir is the agent's data_dir; its state dir is DataDir/client.
	DataDir string
	NodeID  string
	// Drivers by name ("raw_exec", "exec").
	Drivers map[string]TaskDriver
	Mounts  MountChecker
	Timings Timings
	Logger  hclog.Logger
	// PlacementPoll is how often a blocked placement looks again.
	PlacementPoll time.Duration
}

// Client is the agent: allocations, the plugin registry and its CSI
// manager instances, the node's fingerprints, and the record of what it
// did. Events and Calls are for checks.
type Client struct {
	cfg    Config
	log    hclog.Logger
	server *Server

	Events *Record[Event]
	Calls  *Record[Call]

	mu sync.Mutex
	// What survives a restart (the client's state DB, and tasks that keep
	// running): allocations and the plugin registry.
	allocs   []*Alloc
	registry map[string]registration
	// What a restart loses: the CSI manager instances (and their usage
	// trackers) and the node's fingerprints.
	instances map[string]*instance
	plugins   map[string]*api.CSIInfo
}

// New starts a client that talks to server.
func New(cfg Config, server *Server) (*Client, error) {
	if cfg.DataDir == "" || cfg.NodeID == "" || cfg.Mounts == nil {
		return nil, errors.New("nomadclient: DataDir, NodeID and Mounts are required")
	}
	if cfg.Timings == (Timings{}) {
		cfg.Timings = NomadTimings()
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.PlacementPoll == 0 {
		cfg.PlacementPoll = 100 * time.Millisecond
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "client"), 0o750); err != nil {
		return nil, fmt.Errorf("client state dir: %w", err)
	}
	c := &Client{cfg: cfg, log: cfg.Logger, server: server, Events: &Record[Event]{}, Calls: &Record[Call]{},
		registry: map[string]registration{}, instances: map[string]*instance{}, plugins: map[string]*api.CSIInfo{}}
	server.mu.Lock()
	server.client = c
	server.mu.Unlock()
	return c, nil
}

func (c *Client) stateDir() string { return filepath.Join(c.cfg.DataDir, "client") }

func (c *Client) event(e Event) {
	e.Time = time.Now()
	c.log.Debug("event", "event", e.String())
	c.Events.add(e)
}

func (c *Client) taskEvent(r *taskRunner, kind, msg string) {
	c.event(Event{Subsystem: "Task", Alloc: r.alloc.ID, Task: r.task.Name, Type: kind, Message: msg})
}

// registerPlugin adds a plugin to the registry. The same allocation
// registering again changes nothing; another allocation replaces the
// instance, and with it the usage tracker (manager.go:195-213).
func (c *Client) registerPlugin(reg registration) {
	c.mu.Lock()
	old, had := c.registry[reg.PluginID]
	c.registry[reg.PluginID] = reg
	inst := c.instances[reg.PluginID]
	replace := inst == nil || !had || old.AllocID != reg.AllocID
	if replace {
		c.instances[reg.PluginID] = startInstance(c, reg)
	}
	c.mu.Unlock()
	if replace && inst != nil {
		inst.stop()
	}
}

// deregisterPlugin drops the plugin and shuts its instance down; its last
// fingerprint marks it unhealthy.
func (c *Client) deregisterPlugin(reg registration) {
	c.mu.Lock()
	if cur, ok := c.registry[reg.PluginID]; !ok || cur.AllocID != reg.AllocID {
		c.mu.Unlock()
		return
	}
	delete(c.registry, reg.PluginID)
	inst := c.instances[reg.PluginID]
	delete(c.instances, reg.PluginID)
	c.mu.Unlock()
	if inst != nil {
		inst.stop()
	}
}

// updateNodePlugin stores a fingerprint; a change of health or
// description is a node event (node_updater.go:202-236).
func (c *Client) updateNodePlugin(info *api.CSIInfo) {
	c.mu.Lock()
	old := c.plugins[info.PluginID]
	c.plugins[info.PluginID] = info
	c.mu.Unlock()
	if old == nil || old.Healthy != info.Healthy || old.HealthDescription != info.HealthDescription {
		c.event(Event{Subsystem: "CSI", Type: "Plugin health", Message: fmt.Sprintf("plugin %s: healthy %t: %s", info.PluginID, info.Healthy, info.HealthDescription)})
	}
}

// nodePlugin is the node's latest fingerprint of a plugin.
func (c *Client) nodePlugin(id string) (api.CSIInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	info, ok := c.plugins[id]
	if !ok {
		return api.CSIInfo{}, false
	}
	return *info, true
}

// PluginHealth returns the node's fingerprint of a plugin.
func (c *Client) PluginHealth(id string) (api.CSIInfo, bool) { return c.nodePlugin(id) }

// WaitPluginHealthy waits until the node reports the plugin healthy.
func (c *Client) WaitPluginHealthy(ctx context.Context, id string) error {
	_, err := c.Events.Wait(ctx, 0, func(Event) bool {
		info, ok := c.nodePlugin(id)
		return ok && info.Healthy
	})
	if err != nil {
		info, _ := c.nodePlugin(id)
		return fmt.Errorf("plugin %s not healthy (%s): %w", id, info.HealthDescription, err)
	}
	return nil
}

// waitForPlugin waits for a plugin to be registered (manager.go:83-94)
// and returns its instance.
func (c *Client) waitForPlugin(ctx context.Context, id string) (*instance, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timings.PluginWait)
	defer cancel()
	for {
		c.mu.Lock()
		inst := c.instances[id]
		c.mu.Unlock()
		if inst != nil {
			return inst, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("plugin %s: %w", id, errPluginNotFound)
		case <-time.After(c.cfg.PlacementPoll):
		}
	}
}

// manager is the volume manager of a registered plugin; none registered
// now is "plugin not found".
func (c *Client) manager(ctx context.Context, id string) (*volumeManager, error) {
	c.mu.Lock()
	inst := c.instances[id]
	c.mu.Unlock()
	if inst == nil {
		return nil, fmt.Errorf("plugin %s: %w", id, errPluginNotFound)
	}
	return inst.manager(ctx)
}

// nodeDetachVolume is ClientCSI.NodeDetachVolume: the unmount, under a 2
// min context, with the claim's modes and no mount options
// (client/csi_endpoint.go:500-538).
func (c *Client) nodeDetachVolume(ctx context.Context, vol *api.CSIVolume, cl claim) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timings.DetachTimeout)
	defer cancel()
	m, err := c.manager(ctx, vol.PluginID)
	if err != nil {
		return err
	}
	u := UsageOptions{ReadOnly: !cl.write, AttachmentMode: cl.attachment, AccessMode: cl.access}
	return m.unmountVolume(ctx, vol.ID, nomadvolume.RemoteID(vol), vol.Namespace, cl.allocID, u)
}

// RunJob places the job's allocations on the node, each once the
// scheduler finds the node feasible (ctx bounds the wait), and starts
// them; it returns without waiting for them to run.
func (c *Client) RunJob(ctx context.Context, job *api.Job) ([]*Alloc, error) {
	var out []*Alloc
	for _, tg := range job.TaskGroups {
		count := derefOr(tg.Count, 1)
		if t := derefOr(job.Type, api.JobTypeService); t == api.JobTypeSystem || t == api.JobTypeSysbatch {
			count = 1 // one node
		}
		for idx := range count {
			if err := c.waitFeasible(ctx, job, tg, idx); err != nil {
				return out, fmt.Errorf("place %s.%s[%d]: %w", derefOr(job.ID, ""), derefOr(tg.Name, ""), idx, err)
			}
			a := newAlloc(c, job, tg, idx, uuid.NewString())
			c.mu.Lock()
			c.allocs = append(c.allocs, a)
			c.mu.Unlock()
			go a.run()
			out = append(out, a)
		}
	}
	return out, nil
}

func (c *Client) waitFeasible(ctx context.Context, job *api.Job, tg *api.TaskGroup, idx int) error {
	var reqs []volumeClaimReq
	for _, r := range tg.Volumes {
		if r.Type == api.CSIVolumeTypeCSI {
			reqs = append(reqs, volumeClaimReq{volumeID: volumeIDFor(r, idx), write: !r.ReadOnly})
		}
	}
	for {
		err := c.server.feasible(derefOr(job.Namespace, api.DefaultNamespace), reqs)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no node is feasible: %w (%w)", err, ctx.Err())
		case <-time.After(c.cfg.PlacementPoll):
		}
	}
}

// volumeIDFor is the volume an allocation claims: the source, or with
// per_alloc source[index] (feasible.go:502-506).
func volumeIDFor(r *api.VolumeRequest, idx int) string {
	if r.PerAlloc {
		return fmt.Sprintf("%s[%d]", r.Source, idx)
	}
	return r.Source
}

// Allocs returns the job's allocations, oldest first.
func (c *Client) Allocs(jobID string) []*Alloc {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Alloc
	for _, a := range c.allocs {
		if a.JobID == jobID {
			out = append(out, a)
		}
	}
	return out
}

// StopJob stops the job's allocations and waits for each to finish its
// postrun; failed unmounts go on retrying in the background, as Nomad's do.
func (c *Client) StopJob(ctx context.Context, jobID string) error {
	allocs := c.Allocs(jobID)
	for _, a := range allocs {
		a.Stop()
	}
	for _, a := range allocs {
		if err := a.WaitDone(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Restart stops the agent and starts it again, as `systemctl restart
// nomad` would: tasks keep running, the registry and the allocations come
// back from the state, and everything in memory is new: CSI manager
// instances, usage trackers, fingerprints, supervisor loops. Restored
// allocations make no RPC for a volume whose target is still mounted
// (§4, "Client restart").
func (c *Client) Restart(ctx context.Context) error {
	c.mu.Lock()
	allocs := slices.Clone(c.allocs)
	instances := c.instances
	c.instances, c.plugins = map[string]*instance{}, map[string]*api.CSIInfo{}
	c.mu.Unlock()
	for _, a := range allocs {
		a.haltHooks()
	}
	for _, inst := range instances {
		inst.stop()
	}
	c.event(Event{Subsystem: "Client", Type: "Restarted", Message: "client agent restarted"})
	c.mu.Lock()
	for _, reg := range c.registry {
		c.instances[reg.PluginID] = startInstance(c, reg)
	}
	c.mu.Unlock()
	var errs []error
	for _, a := range allocs {
		if err := a.restore(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Shutdown stops every allocation (plugins last, as a drain does) and the
// instances.
func (c *Client) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	allocs := slices.Clone(c.allocs)
	c.mu.Unlock()
	var errs []error
	for _, plugins := range []bool{false, true} {
		for _, a := range allocs {
			if a.isPlugin() == plugins {
				a.Stop()
				errs = append(errs, a.WaitDone(ctx))
			}
		}
	}
	c.mu.Lock()
	instances := c.instances
	c.instances = map[string]*instance{}
	c.mu.Unlock()
	for _, inst := range instances {
		inst.stop()
	}
	return errors.Join(errs...)
}
