// Package alerts watches the bus for what an operator must act on: a
// document not delivered or not answered in time, a certificate about to
// expire, a growing quarantine, a federation link down, the store's disk
// filling. Each rule is checked on a schedule; an alert is raised once
// when its condition starts to hold, repeated on a schedule while it
// holds, and resolved when it clears. Raised, repeated and resolved alerts
// go to a webhook (JSON POST, retried with back-off), to the operator's
// page (Manager.List) and to Prometheus (Manager.Collector). The state is
// kept in a KV bucket of its own, so a restart raises nothing twice and
// `docaxis alerts list` reads what the bus sees.
package alerts
