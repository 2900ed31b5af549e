package nomadclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/nomad/api"
)

// TaskDriver runs tasks, as a Nomad task driver does.
type TaskDriver interface {
	// FSIsolation reports whether tasks see their own root (exec, docker)
	// rather than the host's (raw_exec): it decides the CSI_ENDPOINT a
	// plugin task is given (§1.4).
	FSIsolation() bool
	// MountsVolumes reports whether the driver can mount volumes into its
	// tasks; an allocation with CSI volumes needs one task whose driver
	// can ("no task supports CSI", §3.1).
	MountsVolumes() bool
	// Start starts one run of a task.
	Start(ctx context.Context, spec TaskSpec) (TaskHandle, error)
}

// TaskSpec is one task to start: its config with the runtime references
// resolved, its environment, and its volume mounts.
type TaskSpec struct {
	AllocID, Name string
	Config        map[string]any
	Env           map[string]string
	Mounts        []TaskMount
}

// TaskMount binds a host path (a volume's host target) into a task.
type TaskMount struct {
	Source, Destination string
	ReadOnly            bool
	Propagation         string
}

// TaskHandle is a started task.
type TaskHandle interface {
	// Exited is closed when the task ends; Err then says how.
	Exited() <-chan struct{}
	Err() error
	Signal(sig os.Signal) error
}

// taskRunner runs one task of an allocation through its restart policy
// (Nomad's task runner and restart tracker, in short).
type taskRunner struct {
	c         *Client
	alloc     *Alloc
	task      *api.Task
	driver    TaskDriver
	env       map[string]string
	mounts    []TaskMount
	poststart func() // the plugin supervisor hook, for plugin tasks

	mu       sync.Mutex
	handle   TaskHandle
	state    string // pending, running, dead
	restarts int
	failed   bool
	stop     chan struct{}
	restart  chan string
	started  chan struct{} // closed after the first start, whatever its outcome
	done     chan struct{}
}

// TaskState is a task's state as the API shows it.
type TaskState struct {
	State    string
	Restarts int
	Failed   bool
}

var runtimeRef = regexp.MustCompile(`\$\{([A-Za-z0-9_.\-]+)\}`)

// interpolate fills ${NAME} from the task environment, as Nomad's taskenv
// does; what it does not know stays as written.
func interpolate(v any, env map[string]string) any {
	switch x := v.(type) {
	case string:
		return runtimeRef.ReplaceAllStringFunc(x, func(ref string) string {
			if val, ok := env[ref[2:len(ref)-1]]; ok {
				return val
			}
			return ref
		})
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = interpolate(el, env)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, el := range x {
			out[k] = interpolate(el, env)
		}
		return out
	}
	return v
}

func (r *taskRunner) run() {
	defer close(r.done)
	policy := r.task.RestartPolicy
	var window []time.Time // restarts within the policy's interval
	first := sync.OnceFunc(func() { close(r.started) })
	defer first()
	for {
		spec := TaskSpec{AllocID: r.alloc.ID, Name: r.task.Name, Env: r.env, Mounts: r.mounts,
			Config: interpolate(r.task.Config, r.env).(map[string]any)} //nolint:forcetypeassert // a map stays a map
		h, err := r.driver.Start(context.Background(), spec)
		if err != nil {
			r.c.taskEvent(r, "Driver Failure", err.Error())
			r.finish(true)
			return
		}
		r.mu.Lock()
		r.handle, r.state = h, "running"
		r.mu.Unlock()
		r.c.taskEvent(r, "Started", "Task started by client")
		first()
		if r.poststart != nil {
			r.poststart()
		}
		var reason string
		select {
		case <-r.stop:
			r.kill(h)
			r.c.taskEvent(r, "Killed", "Task successfully killed")
			r.finish(false)
			return
		case reason = <-r.restart:
			r.kill(h)
			r.c.taskEvent(r, "Restart Signaled", reason)
		case <-h.Exited():
			r.c.taskEvent(r, "Terminated", fmt.Sprintf("exited: %v", h.Err()))
		}
		// A restart follows the policy: attempts within interval, then
		// fail, or wait out the interval (mode delay).
		now := time.Now()
		window = append(window, now)
		for len(window) > 0 && now.Sub(window[0]) > derefOr(policy.Interval, 0) {
			window = window[1:]
		}
		delay := derefOr(policy.Delay, 15*time.Second)
		if len(window) > derefOr(policy.Attempts, 0) {
			if derefOr(policy.Mode, api.RestartPolicyModeFail) == api.RestartPolicyModeFail {
				r.c.taskEvent(r, "Not Restarting", "Exceeded allowed attempts")
				r.finish(true)
				return
			}
			delay = derefOr(policy.Interval, 0) - now.Sub(window[0])
			window = nil
		}
		r.mu.Lock()
		r.restarts++
		r.mu.Unlock()
		r.c.taskEvent(r, "Restarting", fmt.Sprintf("Task restarting in %s", delay))
		select {
		case <-r.stop:
			r.finish(false)
			return
		case <-time.After(delay):
		}
	}
}

// kill sends SIGINT (Nomad's default kill_signal) and SIGKILL after the
// task's kill_timeout.
func (r *taskRunner) kill(h TaskHandle) {
	_ = h.Signal(syscall.SIGINT)
	select {
	case <-h.Exited():
		return
	case <-time.After(derefOr(r.task.KillTimeout, 5*time.Second)):
	}
	_ = h.Signal(syscall.SIGKILL)
	<-h.Exited()
}

func (r *taskRunner) finish(failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state, r.failed = "dead", failed
}

// requestRestart restarts the task (the plugin supervisor does so for a
// plugin that is not healthy in time).
func (r *taskRunner) requestRestart(reason string) {
	select {
	case r.restart <- reason:
	case <-r.done:
	}
}

func (r *taskRunner) stateNow() TaskState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return TaskState{State: r.state, Restarts: r.restarts, Failed: r.failed}
}

func (r *taskRunner) currentHandle() (TaskHandle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.handle == nil {
		return nil, errors.New("task not started")
	}
	return r.handle, nil
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
