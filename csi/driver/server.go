package driver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// NewGRPCServer returns a server with the identity and node services and
// the logging, metrics and panic interceptor.
func (d *Driver) NewGRPCServer() *grpc.Server {
	s := grpc.NewServer(grpc.UnaryInterceptor(d.UnaryInterceptor()),
		// Fixed flow-control windows turn off gRPC's bandwidth estimation,
		// which pings the client at every request: a wake-up of the
		// orchestrator in the middle of each call, for messages of a few
		// hundred bytes.
		grpc.StaticStreamWindowSize(1<<20), grpc.StaticConnWindowSize(1<<20))
	csi.RegisterIdentityServer(s, d)
	csi.RegisterNodeServer(s, d)
	return s
}

// UnaryInterceptor is the interceptor NewGRPCServer installs, for servers
// that carry more services (the sanity harness's test controller).
func (d *Driver) UnaryInterceptor() grpc.UnaryServerInterceptor { return d.intercept }

// intercept logs every call with method, volume id, duration and code
// (the request itself at trace level, secrets cleared), counts it, and
// turns a panic into Internal so one bad call cannot take the node down.
func (d *Driver) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	method := path.Base(info.FullMethod)
	start := time.Now()
	log := d.cfg.Logger.Named("grpc")
	if v, ok := req.(interface{ GetVolumeId() string }); ok && v.GetVolumeId() != "" {
		log = log.With("volume_id", v.GetVolumeId())
	}
	if m, ok := req.(proto.Message); ok && log.IsTrace() {
		log.Trace("request", "method", method, "request", redacted(m))
	}
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "%s: internal error (panic); see the plugin log", method)
		}
		code := status.Code(err)
		elapsed := time.Since(start)
		d.metrics.observeRPC(method, code.String(), elapsed)
		level := hclog.Info
		switch {
		case err != nil && code != codes.Aborted:
			level = hclog.Error
		case method == "Probe" || strings.HasPrefix(method, "NodeGetCapabilities") || method == "GetPluginInfo" || method == "GetPluginCapabilities":
			// Nomad asks these every 30 s.
			level = hclog.Trace
		case err != nil:
			level = hclog.Warn
		}
		args := []any{"method", method, "code", code.String(), "duration", elapsed}
		if err != nil {
			args = append(args, "error", status.Convert(err).Message())
		}
		log.Log(level, "rpc", args...)
	}()
	return handler(ctx, req)
}

// Listen opens endpoint (unix:///path, unix:/path or /path), replacing a
// stale socket file a killed plugin left behind. A socket something still
// accepts on is left alone and is an error: a second plugin must not take
// the endpoint from a running one.
func Listen(endpoint string) (net.Listener, error) {
	p, err := socketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if info, err := os.Lstat(p); err == nil {
		if info.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("endpoint %s exists and is not a socket; refusing to remove it", p)
		}
		if socketInUse(p) {
			return nil, fmt.Errorf("endpoint %s is in use: another process accepts connections on it", p)
		}
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", p, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("look at endpoint %s: %w", p, err)
	}
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "unix", p)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", p, err)
	}
	return l, nil
}

// socketInUse reports whether a process accepts connections on the unix
// socket p; a stale socket refuses them.
func socketInUse(p string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", p)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

func socketPath(endpoint string) (string, error) {
	p := endpoint
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		p = strings.TrimPrefix(endpoint, "unix://")
	case strings.HasPrefix(endpoint, "unix:"):
		p = strings.TrimPrefix(endpoint, "unix:")
	case strings.Contains(endpoint, "://"):
		return "", fmt.Errorf("endpoint %q: only unix sockets are supported", endpoint)
	}
	if p == "" || !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("endpoint %q: need an absolute socket path such as unix:///csi/csi.sock", endpoint)
	}
	return p, nil
}

// Serve serves s on l until ctx ends, then lets calls in flight finish for
// up to drain before cutting them off.
func Serve(ctx context.Context, s *grpc.Server, l net.Listener, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("grpc server: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { s.GracefulStop(); close(stopped) }()
	t := time.NewTimer(drain)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		s.Stop()
		<-stopped
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc server: %w", err)
	}
	return nil
}
