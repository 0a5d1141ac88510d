// Package filesvc is the bus's attachment service. Agencies put, get and
// stat attachments through it rather than through the embedded object
// store, whose chunk subjects NATS permissions cannot restrict per
// envelope: the service holds the store, the agencies hold only the right
// to publish on their own service subjects.
//
// Serve runs the service next to the bus (several processes may run it:
// requests are shared in a queue group). NewStore is the storage.Store an
// agency uses through it.
//
// # Access
//
// The agency token in the request subject identifies the caller: NATS
// permissions let agency X publish only on axis.svc.files.<X>.>, so the
// service trusts the subject. Any agency may put, up to Config.MaxSize
// bytes, at most Config.MaxConcurrent transfers at a time and
// Config.RatePerSecond requests per second. Get and stat need the key
// <sha256hex>.<token> in the AXIS_FILEREFS bucket (record.FileRefKey),
// which the bus's tracker writes for the sender and every recipient of an
// envelope listing the attachment; a caller without it is answered
// "forbidden" whether or not the object exists, and the store is not even
// asked. Delete and List are not offered: retention is the bus's business.
//
// # Protocol
//
// T is the caller's agency token (envelope.Token of its code). Subjects:
//
//	axis.svc.files.T.put            open an upload
//	axis.svc.files.T.get            open a download
//	axis.svc.files.T.stat           describe an object
//	axis.svc.files.T.t.<inst>.<id>  the client's messages within a transfer
//
// Requests go to one member of the queue group "docaxis-files". The member
// that accepts a transfer names, in its first answer, the transfer subject
// on which the client sends the rest: <inst> identifies that service
// process (so the messages reach it and not another member of the group)
// and <id> is a random transfer id. The service sends everything to the
// reply subject of the request: an inbox of the client, under the
// connection's inbox prefix, since agencies may subscribe nowhere else.
// Every message carries the header Axis-File-Msg naming its kind:
//
//	kind     direction         headers, body
//	request  client → service  Axis-File-Version: 1 (optional);
//	                           put:  Axis-File-Size (hint, -1 unknown),
//	                                 Axis-File-Media-Type, Axis-File-Window;
//	                           get:  Axis-File-Key, Axis-File-Window;
//	                           stat: Axis-File-Key
//	ready    service → client  put accepted: Axis-File-Transfer (subject),
//	                           Axis-File-Window (granted), Axis-File-Max-Size
//	object   service → client  body: storage.Object as JSON. Answers stat,
//	                           ends a put, opens a get (then also with
//	                           Axis-File-Transfer and Axis-File-Window)
//	chunk    either way        Axis-File-Seq: 1, 2, ...; body: ≤ 256 KiB
//	eof      either way        Axis-File-Seq: last chunk's + 1;
//	                           Axis-File-Size: bytes sent
//	ack      receiver → sender Axis-File-Seq: every chunk up to it consumed
//	cancel   client → service  body: why; the service drops the transfer
//	error    service → client  Axis-File-Error: code; body: what failed
//
// Put: request, ready; the client sends chunks and eof on the transfer
// subject (with its inbox as reply, where "no such transfer" errors go),
// keeping at most the granted window of chunks unacknowledged; the
// service acknowledges each chunk once it has handed it to the store, and
// after eof answers object, or error. The object is stored with
// storage.Store.Put, which hashes and content-addresses it and leaves
// nothing under a content address if the upload fails, so a cancelled or
// abandoned put leaves nothing visible. The client checks that the
// answered SHA-256 and size are those of the bytes it sent.
//
// Get: request, object (or error); the service sends chunks and eof to the
// inbox, at most the granted window unacknowledged; the client
// acknowledges each chunk as it takes it and sends cancel if it stops
// early. The client does not check the hash: as with every Store, the
// caller reads through storage.VerifyingReader against its manifest.
//
// Flow control is what bounds memory: at most window+1 chunks of a
// transfer are held on either side (defaults: 4 granted by up to 8, so
// about 1 MiB), whatever the object's size, and a slow reader never
// overflows a NATS subscription. Messages stay near 256 KiB, far below the
// 1 MiB NATS payload limit.
//
// Either side abandons a transfer when the other falls silent: the client
// after its timeout (WithTimeout) with storage.ErrUnavailable, the service
// after Config.IdleTimeout. Sooner when NATS knows: the client's chunks
// carry its inbox as reply and the service's messages carry the transfer
// subject, so a publish nobody listens to any more comes back as a
// no-responders status (NATS header Status: 503) to the side that is
// still there. Stop drains: it takes no new requests, lets the transfers
// in flight finish for up to Config.DrainTimeout, then answers the rest
// "unavailable".
//
// Limits (size, transfers at once, request rate) are per service process;
// the answer to a put carries the time of that upload, not the time the
// bytes were first stored, which would tell that someone else stored them.
//
// Error codes and the sentinels the client maps them to (errors.Is):
//
//	not-found        storage.ErrNotFound (only to callers allowed to know)
//	forbidden        ErrForbidden
//	too-large        ErrTooLarge
//	rate-limited     ErrRateLimited
//	invalid-key      storage.ErrInvalidKey
//	unavailable      storage.ErrUnavailable
//	digest-mismatch  storage.ErrDigestMismatch
//	size-mismatch    storage.ErrSizeMismatch
//	bad-request      ErrProtocol
//	internal         (no sentinel: the store failed otherwise)
package filesvc
