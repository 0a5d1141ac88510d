package filesvc

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
)

var (
	// ErrForbidden: the agency may not read that attachment (it neither
	// sent nor received an envelope listing it), or may not do that
	// operation at all (Delete, List).
	ErrForbidden = errors.New("attachment access forbidden")
	// ErrTooLarge: the upload exceeds the service's size limit.
	ErrTooLarge = errors.New("attachment too large")
	// ErrRateLimited: the agency sends requests too fast or runs too many
	// transfers at once; retry later.
	ErrRateLimited = errors.New("attachment service rate limit exceeded")
	// ErrProtocol: a message broke the attachment service protocol.
	ErrProtocol = errors.New("attachment service protocol error")
)

// Subjects.
const (
	subjectPrefix = "axis.svc.files."
	transferToken = "t"
	// QueueGroup shares the requests among the service processes.
	QueueGroup = "docaxis-files"
)

// Operations.
const (
	opPut  = "put"
	opGet  = "get"
	opStat = "stat"
)

// Headers.
const (
	hdrMsg       = "Axis-File-Msg"
	hdrVersion   = "Axis-File-Version"
	hdrKey       = "Axis-File-Key"
	hdrSize      = "Axis-File-Size"
	hdrMediaType = "Axis-File-Media-Type"
	hdrWindow    = "Axis-File-Window"
	hdrTransfer  = "Axis-File-Transfer"
	hdrMaxSize   = "Axis-File-Max-Size"
	hdrSeq       = "Axis-File-Seq"
	hdrError     = "Axis-File-Error"
	// hdrOffset, on a get, asks for the object from that byte on (a
	// download resumed after a chunk timed out); the service's object
	// answer repeats it when it honours it.
	hdrOffset = "Axis-File-Offset"

	// NATS sets Status: 503 on the answer to a request nobody listens to.
	hdrStatus    = "Status"
	noResponders = "503"
)

// Message kinds (Axis-File-Msg).
const (
	kindRequest = "request"
	kindReady   = "ready"
	kindObject  = "object"
	kindChunk   = "chunk"
	kindEOF     = "eof"
	kindAck     = "ack"
	kindCancel  = "cancel"
	kindError   = "error"
)

const (
	protocolVersion = "1"
	// chunkSize is the largest chunk either side sends: a quarter of the
	// NATS payload limit leaves room for headers and keeps messages cheap
	// to buffer.
	chunkSize = 256 << 10
	// maxWindow bounds any window, whatever a side asks for.
	maxWindow    = 64
	maxMediaType = 255
	// maxErrorText bounds the text of an error answer.
	maxErrorText = 1024
)

// Error codes (Axis-File-Error).
const (
	codeNotFound       = "not-found"
	codeForbidden      = "forbidden"
	codeTooLarge       = "too-large"
	codeRateLimited    = "rate-limited"
	codeInvalidKey     = "invalid-key"
	codeUnavailable    = "unavailable"
	codeDigestMismatch = "digest-mismatch"
	codeSizeMismatch   = "size-mismatch"
	codeBadRequest     = "bad-request"
	codeInternal       = "internal"
)

// sentinels maps error codes to the errors the client wraps.
var sentinels = map[string]error{
	codeNotFound:       storage.ErrNotFound,
	codeForbidden:      ErrForbidden,
	codeTooLarge:       ErrTooLarge,
	codeRateLimited:    ErrRateLimited,
	codeInvalidKey:     storage.ErrInvalidKey,
	codeUnavailable:    storage.ErrUnavailable,
	codeDigestMismatch: storage.ErrDigestMismatch,
	codeSizeMismatch:   storage.ErrSizeMismatch,
	codeBadRequest:     ErrProtocol,
}

// wireError is an error with the code it travels with.
type wireError struct {
	code string
	msg  string
}

func (e *wireError) Error() string { return e.code + ": " + e.msg }

func errorf(code, format string, args ...any) *wireError {
	return &wireError{code: code, msg: fmt.Sprintf(format, args...)}
}

// request is a decoded request.
type request struct {
	op        string
	token     string // agency token from the subject
	agency    string // agency code
	reply     string
	key       string // get, stat
	sha       string
	size      int64 // put: hint, -1 unknown
	mediaType string
	window    int   // 0: not asked
	offset    int64 // get: first byte wanted (resume)
}

// checkToken accepts the subject token of an agency code, standard or
// registered as non-standard (envelope.CheckNonStandardCode accepts both).
func checkToken(token string) (string, error) {
	code := envelope.CodeFromToken(token)
	// A document system acts as "=" + its id (broker.SystemActor).
	if id, ok := strings.CutPrefix(code, "="); ok {
		if err := envelope.CheckNonStandardCode(id); err != nil {
			return "", err
		}
		if envelope.Token(code) != token {
			return "", fmt.Errorf("%w: token %q does not map back to itself", envelope.ErrInvalidCode, token)
		}
		return code, nil
	}
	if err := envelope.CheckNonStandardCode(code); err != nil {
		return "", err
	}
	if envelope.Token(code) != token {
		return "", fmt.Errorf("%w: token %q does not map back to itself", envelope.ErrInvalidCode, token)
	}
	return code, nil
}

// checkReply accepts a literal subject the service can publish to.
func checkReply(reply string) error {
	if reply == "" {
		return errors.New("no reply subject")
	}
	if len(reply) > 512 {
		return errors.New("reply subject longer than 512 bytes")
	}
	// Wildcard characters are refused anywhere, not only as whole tokens:
	// inboxes never contain them, and other tools treat them differently.
	if strings.ContainsAny(reply, "*>") {
		return fmt.Errorf("reply subject %q is not a literal subject", reply)
	}
	for _, tok := range strings.Split(reply, ".") {
		if tok == "" {
			return fmt.Errorf("reply subject %q is not a literal subject", reply)
		}
	}
	for i := 0; i < len(reply); i++ {
		if c := reply[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("reply subject %q has a control or space character", reply)
		}
	}
	return nil
}

// decodeRequest checks a request to axis.svc.files.<token>.<op>. The
// returned error is a *wireError ready to answer.
func decodeRequest(subject, reply string, h nats.Header) (request, error) {
	rest, ok := strings.CutPrefix(subject, subjectPrefix)
	if !ok {
		return request{}, errorf(codeBadRequest, "subject %q is not under %s", subject, subjectPrefix)
	}
	token, op, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(op, ".") {
		return request{}, errorf(codeBadRequest, "subject %q: want %s<agency>.<op>", subject, subjectPrefix)
	}
	agency, err := checkToken(token)
	if err != nil {
		return request{}, errorf(codeBadRequest, "subject %q: agency token: %v", subject, err)
	}
	req := request{op: op, token: token, agency: agency, reply: reply, size: -1}
	switch op {
	case opPut, opGet, opStat:
	default:
		return request{}, errorf(codeBadRequest, "unknown operation %q: want put, get or stat", op)
	}
	if err := checkReply(reply); err != nil {
		return request{}, errorf(codeBadRequest, "%s: %v", op, err)
	}
	if k := h.Get(hdrMsg); k != kindRequest {
		return request{}, errorf(codeBadRequest, "%s: header %s is %q, want %q", op, hdrMsg, k, kindRequest)
	}
	if v := h.Get(hdrVersion); v != "" && v != protocolVersion {
		return request{}, errorf(codeBadRequest, "%s: protocol version %q not supported (this service speaks %s)", op, v, protocolVersion)
	}
	if v := h.Get(hdrWindow); v != "" && op != opStat {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return request{}, errorf(codeBadRequest, "%s: header %s is %q, want a positive number of chunks", op, hdrWindow, v)
		}
		req.window = min(n, maxWindow)
	}
	switch op {
	case opGet, opStat:
		req.key = h.Get(hdrKey)
		if req.key == "" {
			return request{}, errorf(codeBadRequest, "%s: header %s missing", op, hdrKey)
		}
		sha, err := storage.CheckKey(req.key)
		if err != nil {
			return request{}, errorf(codeInvalidKey, "%s: %v", op, err)
		}
		req.sha = sha
		if v := h.Get(hdrOffset); v != "" && op == opGet {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return request{}, errorf(codeBadRequest, "get: header %s is %q, want a byte offset", hdrOffset, v)
			}
			req.offset = n
		}
	case opPut:
		if v := h.Get(hdrSize); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < -1 {
				return request{}, errorf(codeBadRequest, "put: header %s is %q, want a size in bytes or -1", hdrSize, v)
			}
			req.size = n
		}
		req.mediaType = h.Get(hdrMediaType)
		if err := checkMediaType(req.mediaType); err != nil {
			return request{}, errorf(codeBadRequest, "put: header %s: %v", hdrMediaType, err)
		}
	}
	return req, nil
}

// checkMediaType accepts what can travel in a header.
func checkMediaType(mt string) error {
	if len(mt) > maxMediaType {
		return fmt.Errorf("media type of %d bytes, at most %d", len(mt), maxMediaType)
	}
	if !utf8.ValidString(mt) || strings.IndexFunc(mt, unicode.IsControl) >= 0 {
		return fmt.Errorf("media type %q is not UTF-8 text without control characters", mt)
	}
	return nil
}

// frame is a decoded message within a transfer, from the client.
type frame struct {
	token  string
	inst   string
	id     string
	kind   string
	seq    int64
	size   int64 // eof
	data   []byte
	reply  string
	reason string // cancel
}

// transferSubject is the subject of a transfer's client messages.
func transferSubject(token, inst, id string) string {
	return subjectPrefix + token + "." + transferToken + "." + inst + "." + id
}

// decodeFrame checks a message to axis.svc.files.<token>.t.<inst>.<id>.
// The returned error is a *wireError ready to answer.
func decodeFrame(subject, reply string, h nats.Header, data []byte) (frame, error) {
	rest, ok := strings.CutPrefix(subject, subjectPrefix)
	if !ok {
		return frame{}, errorf(codeBadRequest, "subject %q is not under %s", subject, subjectPrefix)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 || parts[1] != transferToken || parts[2] == "" || parts[3] == "" {
		return frame{}, errorf(codeBadRequest, "subject %q: want %s<agency>.%s.<instance>.<transfer>", subject, subjectPrefix, transferToken)
	}
	if _, err := checkToken(parts[0]); err != nil {
		return frame{}, errorf(codeBadRequest, "subject %q: agency token: %v", subject, err)
	}
	f := frame{token: parts[0], inst: parts[2], id: parts[3], kind: h.Get(hdrMsg), data: data, reply: reply}
	switch f.kind {
	case kindChunk, kindEOF, kindAck:
		seq, err := strconv.ParseInt(h.Get(hdrSeq), 10, 64)
		if err != nil || seq < 1 {
			return frame{}, errorf(codeBadRequest, "transfer %s: %s: header %s is %q, want a positive sequence number", f.id, f.kind, hdrSeq, h.Get(hdrSeq))
		}
		f.seq = seq
	case kindCancel:
		f.reason = string(data[:min(len(data), maxErrorText)])
	default:
		return frame{}, errorf(codeBadRequest, "transfer %s: header %s is %q, want chunk, eof, ack or cancel", f.id, hdrMsg, f.kind)
	}
	switch f.kind {
	case kindChunk:
		if len(data) == 0 || len(data) > chunkSize {
			return frame{}, errorf(codeBadRequest, "transfer %s: chunk %d has %d bytes, want 1 to %d", f.id, f.seq, len(data), chunkSize)
		}
	case kindEOF:
		n, err := strconv.ParseInt(h.Get(hdrSize), 10, 64)
		if err != nil || n < 0 {
			return frame{}, errorf(codeBadRequest, "transfer %s: eof: header %s is %q, want the number of bytes sent", f.id, hdrSize, h.Get(hdrSize))
		}
		f.size = n
	}
	if f.kind != kindCancel && f.kind != kindChunk && len(data) > 0 {
		return frame{}, errorf(codeBadRequest, "transfer %s: %s carries %d unexpected bytes", f.id, f.kind, len(data))
	}
	return f, nil
}

// newMsg builds a protocol message of kind.
func newMsg(subject, reply, kind string, data []byte, kv ...string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Reply: reply, Header: nats.Header{}, Data: data}
	m.Header.Set(hdrMsg, kind)
	for i := 0; i+1 < len(kv); i += 2 {
		m.Header.Set(kv[i], kv[i+1])
	}
	return m
}

// errorMsg is the answer carrying err: its code if it has one, internal
// otherwise.
func errorMsg(subject string, err error) *nats.Msg {
	var we *wireError
	if !errors.As(err, &we) {
		we = &wireError{code: codeInternal, msg: err.Error()}
	}
	text := we.msg
	if len(text) > maxErrorText {
		text = strings.ToValidUTF8(text[:maxErrorText], "")
	}
	return newMsg(subject, "", kindError, []byte(text), hdrError, we.code)
}

// fill reads into buf until it is full or r ends. Unlike io.ReadFull it
// passes on io.ErrUnexpectedEOF from r as the error it is: only io.EOF
// ends a stream, so a truncated source never becomes a shorter object.
func fill(r io.Reader, buf []byte) (int, error) {
	n, empty := 0, 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
		if k > 0 {
			empty = 0
		} else if empty++; empty >= 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}
