package federation

// Internals for the tests in package federation_test.
var AppendHop = appendHop
