package federation

// Internals for the tests in package federation_test.
var (
	AppendHop    = appendHop
	RecordedTime = recordedTime
	ParseChunk   = parseChunk
	RetryDelay   = retryDelay
)

// ParseFedSubject parses a federation subject of prefix ("axis.fedout.",
// "axis.fedrelay.") into dest, origin, kind, a, b.
func ParseFedSubject(prefix, subject string) (dest, origin, kind, a, b string, err error) {
	f, err := parseFedSubject(prefix, subject)
	return f.Dest, f.Origin, f.Kind, f.A, f.B, err
}

// SubjectOf builds the subject ParseFedSubject parses.
func SubjectOf(prefix, dest, origin, kind, a, b string) string {
	return fedSubject{Dest: dest, Origin: origin, Kind: kind, A: a, B: b}.subject(prefix)
}
