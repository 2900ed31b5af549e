package nomadclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/nomad/api"
)

// supervisor is the plugin supervisor hook of a csi_plugin task (§1.1 A,
// plugin_supervisor_hook.go). Its loop starts at the task's first start
// and survives restarts of the task in place: a restarted plugin is
// probed, never re-registered, and nothing is re-staged (§4).
type supervisor struct {
	c      *Client
	alloc  *Alloc
	task   *taskRunner
	cfg    *api.TaskCSIPluginConfig
	reg    registration
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	running bool
	done    chan struct{}
}

// poststart starts the loop unless it runs already.
func (s *supervisor) poststart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return
	}
	s.running = true
	s.done = make(chan struct{})
	go s.loop(s.done)
}

func (s *supervisor) loop(done chan struct{}) {
	defer close(done)
	t := s.c.cfg.Timings
	ctx := s.ctx
	// Ready within health_timeout, socket included, or the task is
	// restarted and its next start begins a new loop.
	deadline := time.Now().Add(s.cfg.HealthTimeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	client, err := dialPlugin(dctx, s.reg.Socket, t, s.c.Calls)
	cancel()
	if err != nil {
		s.notRunning()
		if ctx.Err() == nil {
			s.c.taskEvent(s.task, "PluginUnhealthy", fmt.Sprintf("Error: CSI plugin not ready within health_timeout %s: %v", s.cfg.HealthTimeout, err))
			s.task.requestRestart("CSI plugin did not become healthy before configured health_timeout")
		}
		return
	}
	defer client.close()

	for {
		pctx, cancel := context.WithTimeout(ctx, t.ProbeTimeout)
		ready, err := client.probe(pctx)
		cancel()
		if err == nil && ready {
			break
		}
		if ctx.Err() != nil {
			s.notRunning()
			return
		}
		if time.Now().After(deadline) {
			s.c.taskEvent(s.task, "PluginUnhealthy", fmt.Sprintf("Error: CSI plugin failed probe: not ready within health_timeout %s (last: ready=%t, %v)", s.cfg.HealthTimeout, ready, err))
			s.notRunning()
			s.task.requestRestart("CSI plugin did not become healthy before configured health_timeout")
			return
		}
		select {
		case <-ctx.Done():
			s.notRunning()
			return
		case <-time.After(t.ProbeInterval):
		}
	}
	s.c.taskEvent(s.task, "PluginHealthy", "plugin became healthy")

	ictx, cancel := context.WithTimeout(ctx, t.PluginInfoTimeout)
	name, version, err := client.pluginInfo(ictx)
	cancel()
	if err != nil {
		s.c.taskEvent(s.task, "PluginUnhealthy", fmt.Sprintf("Error: failed to register CSI plugin: %v", err))
		s.notRunning()
		s.task.requestRestart("failed to register CSI plugin")
		return
	}
	reg := s.reg
	reg.Provider, reg.Version = name, version
	s.c.registerPlugin(reg)

	// The light loop: events only, never a restart.
	healthy := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(t.HealthProbeInterval):
		}
		pctx, cancel := context.WithTimeout(ctx, t.ProbeTimeout)
		ready, err := client.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := err == nil && ready
		if now != healthy {
			healthy = now
			if now {
				s.c.taskEvent(s.task, "PluginHealthy", "plugin became healthy")
			} else {
				s.c.taskEvent(s.task, "PluginUnhealthy", fmt.Sprintf("Error: CSI plugin failed probe: ready=%t, %v", ready, err))
			}
		}
	}
}

// notRunning lets the next start of the task begin a new loop.
func (s *supervisor) notRunning() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
}

// stop ends the loop. When the plugin's allocation stops, the plugin is
// deregistered too; when the client stops (to restart), the registration
// stays in its state and the restored client supervises the task again.
func (s *supervisor) stop(deregister bool) {
	s.cancel()
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done != nil {
		<-done
	}
	if deregister {
		s.c.deregisterPlugin(s.reg)
	}
}
