package broker

import "github.com/docaxis/docaxis/envelope"

// SetCrashHooks lets black-box tests simulate a recipient process dying
// after the application handled an envelope: before the received marker,
// or after it but before the ack. Pass nil to clear.
func SetCrashHooks(beforeMarker, beforeAck func(e *envelope.Envelope) bool) {
	testHookBeforeMarker, testHookBeforeAck = beforeMarker, beforeAck
}

// SystemAnswerError is how a system's client reads an error answer.
var SystemAnswerError = systemAnswerError
