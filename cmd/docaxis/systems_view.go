package main

import (
	"context"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/httpapi"
)

// busSystems lists the directory's document systems in service for the
// alert rules (certificate expiry) and the operator's page.
type busSystems struct{ c *broker.Client }

func (b busSystems) inService(ctx context.Context) ([]broker.System, error) {
	list, err := b.c.Systems(ctx)
	if err != nil {
		return nil, err
	}
	out := list[:0]
	for _, s := range list {
		if s.Removed.IsZero() {
			out = append(out, s)
		}
	}
	return out, nil
}

type alertSystems busSystems

func (a alertSystems) Systems(ctx context.Context) ([]alerts.System, error) {
	list, err := busSystems(a).inService(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]alerts.System, 0, len(list))
	for _, s := range list {
		out = append(out, alerts.System{ID: s.ID, Name: s.Name, Certificate: s.Certificate})
	}
	return out, nil
}

type operatorSystems busSystems

func (o operatorSystems) Systems(ctx context.Context) ([]httpapi.OperatorSystem, error) {
	list, err := busSystems(o).inService(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.OperatorSystem, 0, len(list))
	for _, s := range list {
		out = append(out, httpapi.OperatorSystem{ID: s.ID, Name: s.Name, Certificate: s.Certificate, Added: s.Added})
	}
	return out, nil
}
