package record

// Streams and buckets of the federation (broker/federation), on the buses
// that take part in one. Their names are stored state: an existing bus
// home finds its federation by them.
const (
	// FedOutStream, on every bus, holds what leaves it: copies for other
	// buses with the bus's trace entry, their attachments, and (members)
	// the bus's directory announcements.
	FedOutStream = "AXIS_FED_OUT"
	// FedRelayStream, on the national bus, holds what the national
	// relayed, per destination bus, with its own trace entry; in a
	// member's link account on the national, it is the member's queue.
	FedRelayStream = "AXIS_FED_RELAY"
	// FedInStream, on a member, sources from the national's relay what is
	// addressed to this bus.
	FedInStream = "AXIS_FED_IN"
	// FedDirStream, on a member, sources the national's directory.
	FedDirStream = "AXIS_FED_DIR"
	// FedFromStreamPrefix + a member's id names the national's stream
	// sourcing that member's FedOutStream (FedFromStream).
	FedFromStreamPrefix = "AXIS_FED_FROM_"
	// FedInflightBucket, on the national bus, remembers the attachments of
	// the envelopes it relayed (origin.envelope.sha256.destination → size).
	FedInflightBucket = "AXIS_FED_INFLIGHT"
)

// Consumers and subjects a member's leaf link uses on the national bus.
// They are stored state and part of the link's permissions (auth).
const (
	// FedUplinkConsumer is the pull consumer on a member's FedOutStream
	// the national takes from over the link.
	FedUplinkConsumer = "fed_up"
	// FedDownConsumerPrefix + member: in the member's link account on the
	// national, on its queue of FedRelayStream (sourced by the member).
	FedDownConsumerPrefix = "fed_down_"
	// FedDirConsumerPrefix + member: in the member's link account, on its
	// copy of the national's directory.
	FedDirConsumerPrefix = "fed_dir_"
	// FedLinkSubjectPrefix + member + "." + direction: the link's queues.
	FedLinkSubjectPrefix = "axis.fedlink."
)

// FedFromStream is the national's stream sourcing what member sent up:
// the stream a message sits in tells which bus sent it.
func FedFromStream(member string) string { return FedFromStreamPrefix + member }
