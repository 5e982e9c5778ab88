package worker

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/ai-swarm/ai-swarm/images/worker-go/internal/pb"
)

// callTimeout is the per-call deadline of docs/protocol.md.
const callTimeout = 5 * time.Second

// bearerToken adds `authorization: Bearer <token>` to every call.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity is false: the master's gRPC port is plain text on
// the swarm's overlay network (the contract has no gRPC TLS setting).
func (bearerToken) RequireTransportSecurity() bool { return false }

// keepaliveParams: a ping every 10 s, even between calls; a connection whose
// ping goes unanswered for 5 s is dropped (docs/protocol.md, rule 5). Without
// it a connection to a master whose VM is gone (silence, no FIN) looks open for
// ever, every call on it times out, and the leader is never looked up again.
var keepaliveParams = keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}

// dialMaster makes a lazy client connection: it connects on the first call
// and reconnects by itself. Its own reconnect backoff is capped at 5 s (the
// default grows to 2 min), so a master that comes back is reached quickly.
func dialMaster(addr, token string) (*grpc.ClientConn, pb.WorkerCallbackClient, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearerToken(token)),
		grpc.WithKeepaliveParams(keepaliveParams),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 2, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: callTimeout,
		}))
	if err != nil {
		return nil, nil, err
	}
	return conn, pb.NewWorkerCallbackClient(conn), nil
}
