package filesvc

import "github.com/nats-io/nats.go"

// Decoded is what the fuzz target checks of a decoded message.
type Decoded struct {
	Op, Token, Key, SHA, Kind string
	Size, Seq                 int64
	Window, DataLen           int
}

// DecodeRequest exposes the service's request decoding to the tests.
func DecodeRequest(subject, reply string, h nats.Header) (Decoded, error) {
	r, err := decodeRequest(subject, reply, h)
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{Op: r.op, Token: r.token, Key: r.key, SHA: r.sha, Size: r.size, Window: r.window, Kind: kindRequest}, nil
}

// DecodeFrame exposes the decoding of a transfer's messages to the tests.
func DecodeFrame(subject, reply string, h nats.Header, data []byte) (Decoded, error) {
	f, err := decodeFrame(subject, reply, h, data)
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{Token: f.token, Kind: f.kind, Seq: f.seq, Size: f.size, DataLen: len(f.data)}, nil
}

// ErrorCode is the code an error travels with, "" if none.
func ErrorCode(err error) string {
	if we, ok := err.(*wireError); ok {
		return we.code
	}
	return ""
}

// ChunkSize is the protocol's chunk size.
const ChunkSize = chunkSize
