package main

import "github.com/nats-io/nats-server/v2/server"

type serverOptions = server.Options

func serverConfigure(env *serveEnv) func(*server.Options) error {
	return func(o *server.Options) error {
		for _, h := range serverConfigureHooks {
			if err := h(env, o); err != nil {
				return err
			}
		}
		return nil
	}
}
