package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
)

// The JetStream snapshot and restore API (nats-server jetstream_api.go):
// nats.go has no client for it. A snapshot is streamed in chunks to a
// deliver subject, each acknowledged by a reply, ended by an empty
// message whose status says how it went; a restore sends chunks as
// requests to the subject the server names, ended by an empty request
// whose reply is the restored stream's info.

const (
	apiSnapshot = "$JS.API.STREAM.SNAPSHOT."
	apiRestore  = "$JS.API.STREAM.RESTORE."
	chunkSize   = 128 << 10
	// chunkWait bounds the wait for the next chunk of a snapshot.
	chunkWait = time.Minute
)

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

type snapshotResponse struct {
	Error  *apiError       `json:"error,omitempty"`
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
}

type restoreResponse struct {
	Error          *apiError `json:"error,omitempty"`
	DeliverSubject string    `json:"deliver_subject"`
}

type createResponse struct {
	Error *apiError `json:"error,omitempty"`
	State *struct {
		Msgs    uint64 `json:"messages"`
		LastSeq uint64 `json:"last_seq"`
	} `json:"state,omitempty"`
}

func (e *apiError) err(what, stream string) error {
	return fmt.Errorf("%w: %s %s: %s (code %d/%d)", ErrSnapshot, what, stream, e.Description, e.Code, e.ErrCode)
}

// snapshotStream writes stream name's snapshot (with its consumers) to w
// and returns its configuration and state as of the snapshot.
func snapshotStream(ctx context.Context, nc *nats.Conn, name string, w io.Writer) (cfg, state json.RawMessage, err error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: subscribe: %w", name, err)
	}
	defer sub.Unsubscribe()
	// The server's window (8 MiB in flight) must fit the subscription.
	_ = sub.SetPendingLimits(-1, 64<<20)
	req, _ := json.Marshal(map[string]any{"deliver_subject": inbox, "chunk_size": chunkSize})
	msg, err := nc.RequestWithContext(ctx, apiSnapshot+name, req)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: %w", name, err)
	}
	var resp snapshotResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, nil, fmt.Errorf("%w: snapshot %s: answer %q: %v", ErrSnapshot, name, msg.Data, err)
	}
	if resp.Error != nil {
		return nil, nil, resp.Error.err("snapshot", name)
	}
	for {
		cctx, cancel := context.WithTimeout(ctx, chunkWait)
		m, err := sub.NextMsgWithContext(cctx)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: snapshot %s: waiting for a chunk: %w", ErrSnapshot, name, err)
		}
		if len(m.Data) == 0 {
			if st := m.Header.Get("Status"); st != "" && st != "204" {
				return nil, nil, fmt.Errorf("%w: snapshot %s ended with %s %s", ErrSnapshot, name, st, m.Header.Get("Description"))
			}
			return resp.Config, resp.State, nil
		}
		if _, err := w.Write(m.Data); err != nil {
			return nil, nil, fmt.Errorf("snapshot %s: %w", name, err)
		}
		if m.Reply != "" {
			if err := m.Respond(nil); err != nil {
				return nil, nil, fmt.Errorf("snapshot %s: acknowledge a chunk: %w", name, err)
			}
		}
	}
}

// restoreStream creates stream name from a snapshot read from r. The
// stream must not exist.
func restoreStream(ctx context.Context, nc *nats.Conn, name string, cfg, state json.RawMessage, r io.Reader) error {
	req, _ := json.Marshal(map[string]json.RawMessage{"config": cfg, "state": state})
	msg, err := nc.RequestWithContext(ctx, apiRestore+name, req)
	if err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	var resp restoreResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("%w: restore %s: answer %q: %v", ErrSnapshot, name, msg.Data, err)
	}
	if resp.Error != nil {
		return resp.Error.err("restore", name)
	}
	buf := make([]byte, chunkSize)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			ack, err := nc.RequestWithContext(ctx, resp.DeliverSubject, buf[:n])
			if err != nil {
				return fmt.Errorf("restore %s: send a chunk: %w", name, err)
			}
			if len(ack.Data) > 0 {
				var cr createResponse
				if json.Unmarshal(ack.Data, &cr) == nil && cr.Error != nil {
					return cr.Error.err("restore", name)
				}
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("restore %s: read the snapshot: %w", name, rerr)
		}
	}
	end, err := nc.RequestWithContext(ctx, resp.DeliverSubject, nil)
	if err != nil {
		return fmt.Errorf("restore %s: finish: %w", name, err)
	}
	var cr createResponse
	if err := json.Unmarshal(end.Data, &cr); err != nil {
		return fmt.Errorf("%w: restore %s: answer %q: %v", ErrSnapshot, name, end.Data, err)
	}
	if cr.Error != nil {
		return cr.Error.err("restore", name)
	}
	return nil
}
