package record

import "github.com/docaxis/docaxis/envelope"

// The bus's request services. Agencies and systems may not touch the
// bus's buckets or the quarantine; they ask the bus on these subjects, and
// NATS permissions let each publish only under its own token, so the token
// names the caller. Client and bus take the subjects from here.
const (
	// TrackServicePrefix: axis.svc.track.<agency>.<op>, an agency's
	// tracking, answered from its own pairs.
	TrackServicePrefix = "axis.svc.track."
	// TrackEventPrefix: axis.evt.track.<agency>, changes of an agency's
	// pairs (core NATS, at most once).
	TrackEventPrefix = "axis.evt.track."
	// QuarantineServicePrefix: axis.svc.quarantine.<agency>, quarantine a
	// copy of one's own mailbox; the rate verdict of a copy.
	QuarantineServicePrefix = "axis.svc.quarantine."
	// SystemServicePrefix: axis.svc.sys.<system actor>.<op>, a document
	// system's publishes and marker reads, checked against the directory.
	SystemServicePrefix = "axis.svc.sys."
)

// SystemActorPrefix starts the actor of a document system (its identity
// where an agency code would stand): "=" cannot start an agency code.
const SystemActorPrefix = "="

// SystemActor is the actor of document system id.
func SystemActor(id string) string { return SystemActorPrefix + id }

// TrackServiceSubject is the subject of agency's tracking request op.
func TrackServiceSubject(agency, op string) string {
	return TrackServicePrefix + envelope.Token(agency) + "." + op
}

// TrackEventSubject is where the bus publishes the changes of agency's
// pairs (as sender or recipient).
func TrackEventSubject(agency string) string { return TrackEventPrefix + envelope.Token(agency) }

// QuarantineServiceSubject is where agency asks the bus to quarantine a
// copy of its mailbox.
func QuarantineServiceSubject(agency string) string {
	return QuarantineServicePrefix + envelope.Token(agency)
}

// SystemServiceSubject is where system id sends requests of kind op.
func SystemServiceSubject(id, op string) string {
	return SystemServicePrefix + envelope.Token(SystemActor(id)) + "." + op
}
