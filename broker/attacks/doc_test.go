// Package attacks_test is the attack suite: every entry point of the bus
// (NATS subjects, the JetStream API, HTTP routes, file parsers) attacked
// as an agency would, with that agency's own credentials and token, over
// real connections to a bus running with authentication as `docaxis serve`
// runs it. Each test asserts that the attack is refused and that the
// victim's documents, states and attachments are untouched.
//
// One file per area; each new entry point gets its attacks here.
package attacks_test
