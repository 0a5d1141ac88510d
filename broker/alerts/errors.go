package alerts

import "errors"

var (
	// ErrConfig: a threshold or setting is not one the rules can use.
	ErrConfig = errors.New("bad alert configuration")
	// ErrWebhook: the webhook did not take an alert (after the retries,
	// when returned by the sender).
	ErrWebhook = errors.New("alert webhook failed")
)
