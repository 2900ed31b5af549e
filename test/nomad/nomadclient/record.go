package nomadclient

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Record is an append-only list that can be waited on: the client's
// events and the RPCs it made, which tests and the story check.
type Record[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{}
}

func (r *Record[T]) add(item T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, item)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Len is a mark for Since.
func (r *Record[T]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

// Since returns the items from mark on.
func (r *Record[T]) Since(mark int) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if mark > len(r.items) {
		return nil
	}
	return append([]T(nil), r.items[mark:]...)
}

// Wait returns the first item from mark on that matches, waiting for it
// until ctx ends.
func (r *Record[T]) Wait(ctx context.Context, mark int, match func(T) bool) (T, error) {
	for {
		r.mu.Lock()
		for _, it := range r.items[min(mark, len(r.items)):] {
			if match(it) {
				r.mu.Unlock()
				return it, nil
			}
		}
		mark = len(r.items)
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			var zero T
			return zero, fmt.Errorf("waited in vain: %w", ctx.Err())
		}
	}
}

// Event is a task or node event as Nomad records them.
type Event struct {
	Time time.Time
	// Subsystem: "Task" for task events, "CSI" for plugin health node
	// events, "Storage" for mount and unmount node events.
	Subsystem string
	Alloc     string
	Task      string
	Type      string // PluginHealthy, PluginUnhealthy, Started, Restarting, Terminated, Killed, "Mount volume", ...
	Message   string
}

func (e Event) String() string {
	who := e.Subsystem
	if e.Task != "" {
		who = fmt.Sprintf("%s %.8s/%s", e.Subsystem, e.Alloc, e.Task)
	}
	return fmt.Sprintf("%s: %s: %s", who, e.Type, e.Message)
}

// Call is one RPC the client made to the plugin.
type Call struct {
	Method                 string // "NodeStageVolume", without the service
	VolumeID               string
	StagingPath, Target    string
	Readonly               bool
	Capability             *csi.VolumeCapability
	VolumeContext, Secrets map[string]string
	PublishContext         map[string]string
	// HasDeadline records whether the RPC's context had a deadline: Nomad
	// sets none on mount RPCs.
	HasDeadline bool
	Err         error // nil on success
	Took        time.Duration
}

func (c Call) String() string {
	var b strings.Builder
	b.WriteString(c.Method)
	if c.VolumeID != "" {
		fmt.Fprintf(&b, " %s", c.VolumeID)
	}
	if c.Err != nil {
		fmt.Fprintf(&b, ": %s", status.Code(c.Err))
	}
	return b.String()
}

// recordCalls is the client's only interceptor: it records and never
// retries, as Nomad's logging interceptors do (§3.2).
func recordCalls(rec *Record[Call]) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		_, hasDeadline := ctx.Deadline()
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		c := Call{Method: method[strings.LastIndexByte(method, '/')+1:], HasDeadline: hasDeadline, Err: err, Took: time.Since(start)}
		switch r := req.(type) {
		case *csi.NodeStageVolumeRequest:
			c.VolumeID, c.StagingPath, c.Capability = r.GetVolumeId(), r.GetStagingTargetPath(), r.GetVolumeCapability()
			c.VolumeContext, c.Secrets, c.PublishContext = r.GetVolumeContext(), r.GetSecrets(), r.GetPublishContext()
		case *csi.NodePublishVolumeRequest:
			c.VolumeID, c.StagingPath, c.Target, c.Readonly = r.GetVolumeId(), r.GetStagingTargetPath(), r.GetTargetPath(), r.GetReadonly()
			c.Capability, c.VolumeContext, c.Secrets, c.PublishContext = r.GetVolumeCapability(), r.GetVolumeContext(), r.GetSecrets(), r.GetPublishContext()
		case *csi.NodeUnpublishVolumeRequest:
			c.VolumeID, c.Target = r.GetVolumeId(), r.GetTargetPath()
		case *csi.NodeUnstageVolumeRequest:
			c.VolumeID, c.StagingPath = r.GetVolumeId(), r.GetStagingTargetPath()
		}
		rec.add(c)
		return err
	}
}

// Methods filters calls by method.
func Methods(calls []Call, methods ...string) []Call {
	var out []Call
	for _, c := range calls {
		for _, m := range methods {
			if c.Method == m {
				out = append(out, c)
			}
		}
	}
	return out
}
