package nomadclient

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/nomad/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// pluginClient is Nomad's CSI client for one plugin socket (§1.1
// "Connection details"): the socket is stat'ed until it exists, the
// connection made within a second, and nothing but the recorder sits
// between the client and the plugin.
type pluginClient struct {
	conn     *grpc.ClientConn
	identity csi.IdentityClient
	node     csi.NodeClient
}

// dialPlugin waits for socket to exist (a stat every t.SocketRetry) until
// ctx ends, then connects within t.DialTimeout.
func dialPlugin(ctx context.Context, socket string, t Timings, rec *Record[Call]) (*pluginClient, error) {
	for {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("plugin socket %s: %w", socket, ctx.Err())
		case <-time.After(t.SocketRetry):
		}
	}
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority("localhost"),
		grpc.WithUnaryInterceptor(recordCalls(rec)))
	if err != nil {
		return nil, fmt.Errorf("plugin socket %s: %w", socket, err)
	}
	dctx, cancel := context.WithTimeout(ctx, t.DialTimeout)
	defer cancel()
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(dctx, s) {
			_ = conn.Close()
			return nil, fmt.Errorf("connect to plugin socket %s: %w (last state %s)", socket, dctx.Err(), s)
		}
	}
	return &pluginClient{conn: conn, identity: csi.NewIdentityClient(conn), node: csi.NewNodeClient(conn)}, nil
}

func (c *pluginClient) close() {
	_ = c.conn.Close()
}

// probe answers whether the plugin is ready; a reply without the ready
// field counts as ready (client.go:231-243).
func (c *pluginClient) probe(ctx context.Context) (bool, error) {
	r, err := c.identity.Probe(ctx, &csi.ProbeRequest{})
	if err != nil {
		return false, fmt.Errorf("probe: %w", err)
	}
	if r.GetReady() == nil {
		return true, nil
	}
	return r.GetReady().GetValue(), nil
}

// pluginInfo returns the plugin's name and version; an empty name is an
// error.
func (c *pluginClient) pluginInfo(ctx context.Context) (name, version string, err error) {
	r, err := c.identity.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		return "", "", fmt.Errorf("GetPluginInfo: %w", err)
	}
	if r.GetName() == "" {
		return "", "", errors.New("PluginGetInfo: plugin returned empty name field")
	}
	return r.GetName(), r.GetVendorVersion(), nil
}

// basicInfo is what the first good fingerprint caches for the instance's
// life (fingerprint.go:44-59, 88-125).
type basicInfo struct {
	requiresController, requiresTopologies bool
	node                                   *api.CSINodeInfo
}

func (c *pluginClient) basic(ctx context.Context) (basicInfo, error) {
	caps, err := c.identity.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{})
	if err != nil {
		return basicInfo{}, fmt.Errorf("GetPluginCapabilities: %w", err)
	}
	var b basicInfo
	for _, cp := range caps.GetCapabilities() {
		switch cp.GetService().GetType() {
		case csi.PluginCapability_Service_CONTROLLER_SERVICE:
			b.requiresController = true
		case csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS:
			b.requiresTopologies = true
		}
	}
	info, err := c.node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		return basicInfo{}, fmt.Errorf("NodeGetInfo: %w", err)
	}
	if info.GetNodeId() == "" {
		return basicInfo{}, errors.New("plugin failed to return nodeid")
	}
	maxVolumes := info.GetMaxVolumesPerNode()
	if maxVolumes == 0 {
		maxVolumes = math.MaxInt64
	}
	b.node = &api.CSINodeInfo{ID: info.GetNodeId(), MaxVolumes: maxVolumes}
	if top := info.GetAccessibleTopology(); top != nil {
		b.node.AccessibleTopology = &api.CSITopology{Segments: top.GetSegments()}
	}
	return b, nil
}

// nodeCapabilities fills the per-pass capability bits of a node info.
func (c *pluginClient) nodeCapabilities(ctx context.Context, into *api.CSINodeInfo) error {
	r, err := c.node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		return fmt.Errorf("NodeGetCapabilities: %w", err)
	}
	into.RequiresNodeStageVolume, into.SupportsStats, into.SupportsExpand, into.SupportsCondition = false, false, false, false
	for _, cp := range r.GetCapabilities() {
		switch cp.GetRpc().GetType() {
		case csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME:
			into.RequiresNodeStageVolume = true
		case csi.NodeServiceCapability_RPC_GET_VOLUME_STATS:
			into.SupportsStats = true
		case csi.NodeServiceCapability_RPC_EXPAND_VOLUME:
			into.SupportsExpand = true
		case rpcVolumeCondition:
			into.SupportsCondition = true
		}
	}
	return nil
}

// rpcVolumeCondition is VOLUME_CONDITION, the value Nomad's older spec
// module names; spec v1.13 no longer does.
const rpcVolumeCondition csi.NodeServiceCapability_RPC_Type = 4

func (c *pluginClient) stage(ctx context.Context, req *csi.NodeStageVolumeRequest) error {
	_, err := c.node.NodeStageVolume(ctx, req)
	return wrapRPC("NodeStageVolume", err)
}

func (c *pluginClient) publish(ctx context.Context, req *csi.NodePublishVolumeRequest) error {
	_, err := c.node.NodePublishVolume(ctx, req)
	return wrapRPC("NodePublishVolume", err)
}

func (c *pluginClient) unpublish(ctx context.Context, volumeID, target string) error {
	_, err := c.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: volumeID, TargetPath: target})
	return wrapRPC("NodeUnpublishVolume", err)
}

func (c *pluginClient) unstage(ctx context.Context, volumeID, staging string) error {
	_, err := c.node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: volumeID, StagingTargetPath: staging})
	return wrapRPC("NodeUnstageVolume", err)
}

// wrapRPC names the RPC; the gRPC status stays reachable (status.Code,
// errors.As) for whoever classifies the error.
func wrapRPC(method string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", method, err)
}
