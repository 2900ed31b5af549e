package nomadclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
)

// Allocation states.
const (
	StatusPending  = "pending"
	StatusRunning  = "running"
	StatusComplete = "complete"
	StatusFailed   = "failed"
)

// Alloc is one allocation on the node: its CSI hook (claim and mount
// before the tasks, unmount and release after), its tasks, and for a
// plugin task the supervisor.
type Alloc struct {
	ID, JobID, Group, Namespace string
	Index                       int

	c   *Client
	job *api.Job
	tg  *api.TaskGroup

	mu          sync.Mutex
	status      string
	err         error
	volumes     []*allocVolume
	tasks       []*taskRunner
	supervisors []*supervisor
	stopOnce    sync.Once
	stopCh      chan struct{}
	started     chan struct{} // closed when the status leaves pending
	done        chan struct{} // closed when postrun has run
	retries     sync.WaitGroup
}

// allocVolume is one CSI volume of an allocation: its claim and, once
// mounted, the host target (the CSIVolumeStub Nomad persists).
type allocVolume struct {
	alias    string
	volumeID string
	usage    UsageOptions
	vol      *api.CSIVolume
	mount    *MountInfo
}

func newAlloc(c *Client, job *api.Job, tg *api.TaskGroup, idx int, id string) *Alloc {
	return &Alloc{
		ID: id, JobID: derefOr(job.ID, ""), Group: derefOr(tg.Name, ""), Namespace: derefOr(job.Namespace, api.DefaultNamespace),
		Index: idx, c: c, job: job, tg: tg, status: StatusPending,
		stopCh: make(chan struct{}), started: make(chan struct{}), done: make(chan struct{}),
	}
}

func (a *Alloc) setStatus(s string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.status == StatusPending {
		close(a.started)
	}
	a.status, a.err = s, err
}

// Status is the allocation's client status and, when it failed, why.
func (a *Alloc) Status() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.err
}

func (a *Alloc) isPlugin() bool {
	return slices.ContainsFunc(a.tg.Tasks, func(t *api.Task) bool { return t.CSIPluginConfig != nil })
}

func (a *Alloc) run() {
	defer close(a.done)
	if err := a.prerun(); err != nil {
		a.c.event(Event{Subsystem: "Alloc", Alloc: a.ID, Type: "Setup Failure", Message: err.Error()})
		a.setStatus(StatusFailed, err)
		a.postrun()
		return
	}
	if err := a.startTasks(); err != nil {
		a.setStatus(StatusFailed, err)
		a.postrun()
		return
	}
	for _, r := range a.tasks {
		<-r.started
	}
	a.setStatus(StatusRunning, nil)
	tasksDone := make(chan struct{})
	go func() {
		for _, r := range a.tasks {
			<-r.done
		}
		close(tasksDone)
	}()
	select {
	case <-a.stopCh:
		for _, r := range a.tasks {
			close(r.stop)
		}
		<-tasksDone
	case <-tasksDone:
	}
	status := StatusComplete
	for _, r := range a.tasks {
		if r.stateNow().Failed {
			status = StatusFailed
		}
	}
	a.mu.Lock()
	sups := slices.Clone(a.supervisors)
	a.mu.Unlock()
	for _, s := range sups {
		s.stop(true)
	}
	a.setStatus(status, nil)
	a.postrun()
}

// prerun is the CSI hook's Prerun (csi_hook.go:93-154): a task that can
// mount, then a claim of every volume, then the mounts.
func (a *Alloc) prerun() error {
	aliases := slices.Sorted(maps.Keys(a.tg.Volumes))
	aliases = slices.DeleteFunc(aliases, func(al string) bool { return a.tg.Volumes[al].Type != api.CSIVolumeTypeCSI })
	if len(aliases) == 0 {
		return nil
	}
	if !slices.ContainsFunc(a.tg.Tasks, func(t *api.Task) bool {
		d, ok := a.c.cfg.Drivers[t.Driver]
		return ok && d.MountsVolumes()
	}) {
		return errors.New("no task supports CSI")
	}
	for _, alias := range aliases {
		r := a.tg.Volumes[alias]
		u := UsageOptions{ReadOnly: r.ReadOnly, AttachmentMode: api.CSIVolumeAttachmentMode(r.AttachmentMode), AccessMode: api.CSIVolumeAccessMode(r.AccessMode)}
		if r.MountOptions != nil {
			// Every allocation holds its own copy of the job: the tracker
			// compares this pointer (§3.4).
			mo := *r.MountOptions
			u.MountOptions = &mo
		}
		av := &allocVolume{alias: alias, volumeID: volumeIDFor(r, a.Index), usage: u}
		vol, err := a.claim(av)
		if err != nil {
			return fmt.Errorf("claim volumes: %w", err)
		}
		av.vol = vol
		a.mu.Lock()
		a.volumes = append(a.volumes, av)
		a.mu.Unlock()
	}
	for _, av := range a.volumeList() {
		if err := a.mount(av); err != nil {
			return err
		}
	}
	return nil
}

// claim asks the server, backing off from 1 s doubling to 1 min for up
// to 24 h while the claims are exhausted (csi_hook.go:389-448).
func (a *Alloc) claim(av *allocVolume) (*api.CSIVolume, error) {
	t := a.c.cfg.Timings
	next := backoff(t.ClaimBackoff, t.ClaimBackoffMax)
	deadline := time.Now().Add(t.ClaimRetryFor)
	for {
		vol, err := a.c.server.claimVolume(a.Namespace, av.volumeID, claim{
			allocID: a.ID, write: !av.usage.ReadOnly, access: av.usage.AccessMode, attachment: av.usage.AttachmentMode,
		})
		if err == nil || !errors.Is(err, errMaxClaims) || time.Now().After(deadline) {
			return vol, err
		}
		select {
		case <-a.stopCh:
			return nil, fmt.Errorf("claim of %s: allocation stopped while waiting: %w", av.volumeID, err)
		case <-time.After(next()):
		}
	}
}

// mount waits for the plugin (1 min) and its first fingerprint, then
// mounts with no deadline.
func (a *Alloc) mount(av *allocVolume) error {
	inst, err := a.c.waitForPlugin(context.Background(), av.vol.PluginID)
	if err != nil {
		return fmt.Errorf("mount volume %s: %w", av.volumeID, err)
	}
	m, err := inst.manager(context.Background())
	if err != nil {
		return fmt.Errorf("mount volume %s: %w", av.volumeID, err)
	}
	info, err := m.mountVolume(context.Background(), av.vol, a.ID, av.usage, nil)
	if err != nil {
		return fmt.Errorf("mount volume %s: %w", av.volumeID, err)
	}
	a.mu.Lock()
	av.mount = info
	a.mu.Unlock()
	return nil
}

func (a *Alloc) volumeList() []*allocVolume {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.volumes)
}

// postrun is the CSI hook's Postrun (csi_hook.go:160-212): every volume
// unmounted in parallel; a failure goes on in the background with
// backoff; the claim is released once the node let go.
func (a *Alloc) postrun() {
	var wg sync.WaitGroup
	for _, av := range a.volumeList() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.unmount(av); err != nil {
				a.c.event(Event{Subsystem: "Alloc", Alloc: a.ID, Type: "Unmount failed", Message: fmt.Sprintf("volume %s: %v: retrying in the background", av.volumeID, err)})
				a.retries.Add(1)
				go a.unmountWithRetry(av)
				return
			}
			a.c.server.release(a.Namespace, av.volumeID, a.ID)
		}()
	}
	wg.Wait()
}

func (a *Alloc) unmount(av *allocVolume) error {
	m, err := a.c.manager(context.Background(), av.vol.PluginID)
	if err != nil {
		return err
	}
	return m.unmountVolume(context.Background(), av.volumeID, nomadvolume.RemoteID(av.vol), a.Namespace, a.ID, av.usage)
}

func (a *Alloc) unmountWithRetry(av *allocVolume) {
	defer a.retries.Done()
	t := a.c.cfg.Timings
	next := backoff(t.UnmountBackoff, t.UnmountBackoffMax)
	deadline := time.Now().Add(t.UnmountRetryFor)
	for time.Now().Before(deadline) {
		time.Sleep(next())
		if err := a.unmount(av); err == nil {
			a.c.server.release(a.Namespace, av.volumeID, a.ID)
			a.c.event(Event{Subsystem: "Alloc", Alloc: a.ID, Type: "Unmount retried", Message: "volume " + av.volumeID + " released"})
			return
		}
	}
}

// startTasks starts each task with its volume mounts and environment.
func (a *Alloc) startTasks() error {
	for _, t := range a.tg.Tasks {
		d, ok := a.c.cfg.Drivers[t.Driver]
		if !ok {
			return fmt.Errorf("task %s: driver %q is not available on the node", t.Name, t.Driver)
		}
		r := &taskRunner{c: a.c, alloc: a, task: t, driver: d, state: StatusPending,
			stop: make(chan struct{}), restart: make(chan string), started: make(chan struct{}), done: make(chan struct{})}
		r.env = map[string]string{
			"NOMAD_ALLOC_ID": a.ID, "NOMAD_ALLOC_INDEX": strconv.Itoa(a.Index), "NOMAD_JOB_NAME": a.JobID,
			"NOMAD_GROUP_NAME": a.Group, "NOMAD_TASK_NAME": t.Name, "NOMAD_NAMESPACE": a.Namespace,
		}
		for k, v := range t.Env {
			r.env[k] = interpolate(v, r.env).(string) //nolint:forcetypeassert // a string stays a string
		}
		for _, vm := range t.VolumeMounts {
			av := a.volumeByAlias(derefOr(vm.Volume, ""))
			if av == nil || av.mount == nil {
				return fmt.Errorf("task %s: volume_mount of %q: no such mounted volume", t.Name, derefOr(vm.Volume, ""))
			}
			r.mounts = append(r.mounts, TaskMount{Source: av.mount.Source, Destination: derefOr(vm.Destination, ""),
				ReadOnly: a.tg.Volumes[av.alias].ReadOnly || derefOr(vm.ReadOnly, false), Propagation: derefOr(vm.PropagationMode, "private")})
		}
		if t.CSIPluginConfig != nil {
			if err := a.pluginTask(r, d, t.CSIPluginConfig); err != nil {
				return err
			}
		}
		a.mu.Lock()
		a.tasks = append(a.tasks, r)
		a.mu.Unlock()
		go r.run()
	}
	return nil
}

// pluginTask prepares a csi_plugin task (§1.4): the socket dir and the
// stage/publish root on the host, CSI_ENDPOINT, the bind mounts a task
// with its own root needs, and the supervisor.
func (a *Alloc) pluginTask(r *taskRunner, d TaskDriver, cfg *api.TaskCSIPluginConfig) error {
	sockDir := filepath.Join(a.c.stateDir(), "csi", "plugins", a.ID)
	hostRoot := filepath.Join(a.c.stateDir(), "csi", string(cfg.Type), cfg.ID)
	for _, dir := range []string{sockDir, hostRoot} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("plugin %s: %w", cfg.ID, err)
		}
	}
	socket := filepath.Join(sockDir, "csi.sock")
	if _, set := r.env["CSI_ENDPOINT"]; !set {
		if d.FSIsolation() {
			r.env["CSI_ENDPOINT"] = "unix://" + filepath.Join(cfg.MountDir, "csi.sock")
		} else {
			r.env["CSI_ENDPOINT"] = "unix://" + socket
		}
	}
	if d.FSIsolation() {
		r.mounts = append(r.mounts,
			TaskMount{Source: sockDir, Destination: cfg.MountDir, Propagation: api.VolumeMountPropagationBidirectional},
			TaskMount{Source: hostRoot, Destination: cfg.StagePublishBaseDir, Propagation: api.VolumeMountPropagationBidirectional},
			TaskMount{Source: "/dev", Destination: "/dev", Propagation: api.VolumeMountPropagationBidirectional})
	}
	s := &supervisor{c: a.c, alloc: a, task: r, cfg: cfg,
		reg: registration{PluginID: cfg.ID, AllocID: a.ID, Socket: socket, HostRoot: hostRoot, PluginRoot: cfg.StagePublishBaseDir}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	r.poststart = s.poststart
	a.mu.Lock()
	a.supervisors = append(a.supervisors, s)
	a.mu.Unlock()
	return nil
}

func (a *Alloc) volumeByAlias(alias string) *allocVolume {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, av := range a.volumes {
		if av.alias == alias {
			return av
		}
	}
	return nil
}

// haltHooks stops what lives in the client's memory (supervisor loops)
// without touching tasks or registrations: the client is restarting.
func (a *Alloc) haltHooks() {
	a.mu.Lock()
	sups := slices.Clone(a.supervisors)
	a.mu.Unlock()
	for _, s := range sups {
		s.stop(false)
	}
}

// restore is what a restarted client does for a running allocation: the
// supervisor again for a plugin task; for each volume, wait for the plugin
// (1 min) and, when the host target is still a mount point, nothing at
// all: no claim, no RPC. Otherwise the usual claim, stage and publish.
func (a *Alloc) restore(_ context.Context) error {
	if st, _ := a.Status(); st != StatusRunning {
		return nil
	}
	a.mu.Lock()
	sups := slices.Clone(a.supervisors)
	a.mu.Unlock()
	for _, s := range sups {
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.poststart()
	}
	for _, av := range a.volumeList() {
		if _, err := a.c.waitForPlugin(context.Background(), av.vol.PluginID); err != nil {
			return fmt.Errorf("restore allocation %.8s: %w", a.ID, err)
		}
		mounted, err := a.c.cfg.Mounts.IsMountPoint(av.mount.Source)
		if err != nil {
			return fmt.Errorf("restore allocation %.8s: %w", a.ID, err)
		}
		if mounted {
			continue
		}
		vol, err := a.claim(av)
		if err != nil {
			return fmt.Errorf("restore allocation %.8s: %w", a.ID, err)
		}
		av.vol = vol
		if err := a.mount(av); err != nil {
			return fmt.Errorf("restore allocation %.8s: %w", a.ID, err)
		}
	}
	return nil
}

// Stop asks the allocation to stop (nomad job stop); WaitDone waits.
func (a *Alloc) Stop() {
	a.stopOnce.Do(func() { close(a.stopCh) })
}

// WaitRunning waits until the allocation runs; a failed one is an error
// carrying why.
func (a *Alloc) WaitRunning(ctx context.Context) error {
	select {
	case <-a.started:
	case <-ctx.Done():
		return fmt.Errorf("allocation %.8s still pending: %w", a.ID, ctx.Err())
	}
	st, err := a.Status()
	if st != StatusRunning {
		return fmt.Errorf("allocation %.8s is %s: %w", a.ID, st, err)
	}
	return nil
}

// WaitDone waits until the allocation stopped and ran its postrun.
func (a *Alloc) WaitDone(ctx context.Context) error {
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("allocation %.8s not done: %w", a.ID, ctx.Err())
	}
}

// WaitUnmountRetries waits for the background unmount retries to end.
func (a *Alloc) WaitUnmountRetries(ctx context.Context) error {
	done := make(chan struct{})
	go func() { a.retries.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("allocation %.8s: unmount still retrying: %w", a.ID, ctx.Err())
	}
}

// HostTarget is where the allocation's volume (by alias) is mounted on
// the host, and the volume's ID.
func (a *Alloc) HostTarget(alias string) (volumeID, path string, ok bool) {
	av := a.volumeByAlias(alias)
	if av == nil || av.mount == nil {
		return "", "", false
	}
	return av.volumeID, av.mount.Source, true
}

// Task returns a task's current handle and state.
func (a *Alloc) Task(name string) (TaskHandle, TaskState, error) {
	a.mu.Lock()
	tasks := slices.Clone(a.tasks)
	a.mu.Unlock()
	for _, r := range tasks {
		if r.task.Name == name {
			h, err := r.currentHandle()
			return h, r.stateNow(), err
		}
	}
	return nil, TaskState{}, fmt.Errorf("allocation %.8s has no task %s", a.ID, name)
}
