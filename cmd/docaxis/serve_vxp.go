package main

import (
	"context"
	"net/http"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/httpapi/vxp"
)

// The national axis's own API (SDKVXP), at /vxp of the HTTP listener.

var vxpFlags struct {
	on            bool
	allowRegister bool
}

func init() {
	f := serveCmd.Flags()
	f.BoolVar(&vxpFlags.on, "vxp", true, "serve the national axis's API for SDKVXP document systems at /vxp of --http")
	f.BoolVar(&vxpFlags.allowRegister, "vxp-allow-register", false, "let document systems register and delete their own agencies (registerAgency, deleteAgency)")
}

// vxpHandler returns the /vxp handler (nil when --vxp=false).
func vxpHandler(ctx context.Context, env *serveEnv, c *broker.Client) (http.Handler, error) {
	if !vxpFlags.on {
		return nil, nil
	}
	cfg := vxp.Config{Client: c, Keystore: env.Keystore, AllowRegister: vxpFlags.allowRegister, Logger: env.Log,
		MaxEdocBytes: httpFlags.maxRequest}
	if env.Metrics != nil {
		cfg.Registerer = env.Metrics.Registry()
	}
	return vxp.New(ctx, cfg)
}
