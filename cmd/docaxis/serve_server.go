package main

import "github.com/nats-io/nats-server/v2/server"

type serverOptions = server.Options

// configureServer sets the embedded server's options: the federation's
// leaf nodes, then authentication and TLS.
func configureServer(env *serveEnv) func(*serverOptions) error {
	return func(o *serverOptions) error {
		for _, configure := range []func(*serveEnv, *serverOptions) error{configureFederation, configureSecurity} {
			if err := configure(env, o); err != nil {
				return err
			}
		}
		return nil
	}
}
