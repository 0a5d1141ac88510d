package vxp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/operations"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// The directory, as the SDK's AgencyServiceImp reads it; registerAgency
// and deleteAgency for a system's own agencies when the operator allows.

func (s *Server) getAgenciesList(ctx context.Context, _ http.ResponseWriter, _ *http.Request, _ *caller) (answer, *Error) {
	list, err := s.c.Agencies(ctx)
	if err != nil {
		return nil, classify("getAgenciesList", err)
	}
	data := make([]map[string]string, 0, len(list))
	for _, a := range list {
		if a.State == broker.StateDeleted || !a.Withdrawn.IsZero() {
			continue
		}
		data = append(data, map[string]string{"id": a.Code, "pid": a.Parent, "code": a.Code, "name": a.Name, "mail": a.Email, "oldCode": a.OldCode})
	}
	a := ok("OK")
	a["data"] = data
	return a, nil
}

// getAgenciesListQD20 lists the agencies with their codes under Decision
// 20; level, when a positive number, keeps those that deep in the
// hierarchy (1: the top).
func (s *Server) getAgenciesListQD20(ctx context.Context, _ http.ResponseWriter, _ *http.Request, c *caller) (answer, *Error) {
	list, err := s.c.Agencies(ctx)
	if err != nil {
		return nil, classify("getAgenciesListQD20", err)
	}
	level := 0
	if v := c.Params.Get("level"); v != "" {
		if level, err = strconv.Atoi(v); err != nil || level < 0 {
			return nil, fail(CodeBadRequest, "getAgenciesListQD20: level %q is not a number (1 = the top of the hierarchy)", v)
		}
	}
	parent := make(map[string]string, len(list))
	for _, a := range list {
		parent[a.Code] = a.Parent
	}
	depth := func(code string) int {
		d := 1
		for p := parent[code]; p != "" && d <= 16; p = parent[p] {
			d++
		}
		return d
	}
	data := []map[string]string{}
	for _, a := range list {
		if a.State == broker.StateDeleted || !a.Withdrawn.IsZero() || (level > 0 && depth(a.Code) != level) {
			continue
		}
		data = append(data, map[string]string{"id": a.Code, "code": a.Code, "name": a.Name, "mail": a.Email, "code102": a.Code})
	}
	a := ok("OK")
	a["data"] = data
	return a, nil
}

// getSynchronizeUnit gives the directory with versions and deletions; a
// version parameter asks only for what changed after it.
func (s *Server) getSynchronizeUnit(ctx context.Context, _ http.ResponseWriter, _ *http.Request, c *caller) (answer, *Error) {
	var since uint64
	if v := c.Params.Get("version"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fail(CodeBadRequest, "getSynchronizeUnit: version %q is not a directory version (a number)", v)
		}
		since = n
	}
	ch, err := s.c.DirectoryChanges(ctx, since)
	if err != nil {
		return nil, classify("getSynchronizeUnit", err)
	}
	data := make([]map[string]any, 0, len(ch.Agencies))
	for _, a := range ch.Agencies {
		modified := a.Updated
		if modified.IsZero() {
			modified = a.Added
		}
		data = append(data, map[string]any{
			"code": a.Code, "id": a.Code, "mail": a.Email, "name": a.Name, "pid": a.Parent,
			"version": a.Version, "centerCode": a.System, "deleted": a.State == broker.StateDeleted,
			"modifyDate": edxml.FormatTimestamp(modified), "isAgency": true,
		})
	}
	a := ok("OK")
	a["data"] = data
	a["version"] = ch.Version
	return a, nil
}

// registerAgency registers, or updates, an agency served by the calling
// system. The body is the DMS's data string: code, name, pcode (parent),
// mail (lenient JSON, see ParseLenientObject).
func (s *Server) registerAgency(ctx context.Context, _ http.ResponseWriter, r *http.Request, c *caller) (answer, *Error) {
	if e := s.allowRegister("registerAgency"); e != nil {
		return nil, e
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, classify("registerAgency", err)
	}
	f, err := ParseLenientObject(string(body))
	if err != nil {
		return nil, fail(CodeBadRequest, "registerAgency: body: %v (want e.g. {\"code\":\"000.01.02.H41\",\"name\":\"...\",\"pcode\":\"000.00.00.H41\",\"mail\":\"...\"})", err)
	}
	get := func(keys ...string) string {
		for _, k := range keys {
			for fk, v := range f {
				if strings.EqualFold(fk, k) && v != "" {
					return strings.TrimSpace(v)
				}
			}
		}
		return ""
	}
	code := get("code")
	if code == "" {
		return nil, fail(CodeBadRequest, "registerAgency: the body names no code")
	}
	if err := envelope.CheckCode(code); err != nil {
		// Non-standard codes are the operator's to register.
		return nil, fail(CodeBadRequest, "registerAgency: %v", err)
	}
	a := broker.Agency{Code: code, Name: get("name"), Parent: get("pcode", "parent", "pid"), Email: get("mail", "email"), OldCode: get("oldCode", "old_code"), System: c.System}
	// The operator's action, kept to the system's own agencies; the
	// directory write checks the code against the federation's bindings.
	_, err = operations.New(s.c, s.cfg.Keystore).AddServedAgency(ctx, operations.ServedAgency{Agency: a, Stay: true})
	switch {
	case errors.Is(err, operations.ErrOtherSystem):
		return nil, fail(CodeForbidden, "registerAgency: agency %s is registered and not served by system %s: only the operator moves it (docaxis agency add %s --system %s)", code, c.System, code, c.System)
	case err != nil:
		return nil, classify("registerAgency "+code, err)
	}
	return ok("registered " + code + " (served by system " + c.System + ")"), nil
}

// deleteAgency deletes an agency of the calling system: its history stays
// on record, new mail to it is refused.
func (s *Server) deleteAgency(ctx context.Context, _ http.ResponseWriter, _ *http.Request, c *caller) (answer, *Error) {
	if e := s.allowRegister("deleteAgency"); e != nil {
		return nil, e
	}
	code := c.Params.Get("AgencyCode")
	if code == "" {
		return nil, fail(CodeBadRequest, "deleteAgency: no AgencyCode in the header")
	}
	a, err := s.c.LookupAgency(ctx, code)
	if err != nil || a.System != c.System {
		// An agency of another system is not told from one that does not
		// exist.
		return nil, fail(CodeForbidden, "deleteAgency: agency %s is not served by system %s", code, c.System)
	}
	if a.State == broker.StateDeleted {
		return ok(code + " was deleted already"), nil
	}
	a.State = broker.StateDeleted
	if err := s.c.RegisterAgency(ctx, *a); err != nil {
		return nil, classify("deleteAgency "+code, err)
	}
	return ok("deleted " + code), nil
}

func (s *Server) allowRegister(op string) *Error {
	if !s.cfg.AllowRegister || s.cfg.Keystore == nil {
		return fail(CodeForbidden, "%s is turned off on this bus: the operator registers agencies (docaxis agency add CODE --system ID), or serves with --vxp-allow-register", op)
	}
	return nil
}
