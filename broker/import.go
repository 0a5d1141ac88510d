package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/docaxis/docaxis/signing"
)

// ImportLine is one agency of a directory import (a line of a national
// directory export), with its line number for errors.
type ImportLine struct {
	Line   int
	Agency Agency
	// Fields lists the optional fields the line set: the others keep the
	// values the entry has (an import updates, it does not blank).
	Fields []string
}

// ImportError is a line that was not applied, and why.
type ImportError struct {
	Line int    `json:"line"`
	Code string `json:"code,omitempty"`
	Err  error  `json:"-"`
}

func (e *ImportError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return fmt.Sprintf("line %d (%s): %v", e.Line, e.Code, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

// ImportOptions set how an import signs and reports.
type ImportOptions struct {
	// Bind signs the binding of an agency to a system (the bus's CA);
	// needed when lines name a system.
	Bind func(signing.Binding) (string, error)
	// Progress is called as entries are written.
	Progress func(done, total int)
	// Chunk is how many entries are written between progress reports and
	// mailbox updates (default 2,000).
	Chunk int
}

// ImportResult counts what an import did.
type ImportResult struct {
	Added     int            `json:"added"`
	Updated   int            `json:"updated"`
	Unchanged int            `json:"unchanged"`
	Errors    []*ImportError `json:"-"`
	Version   uint64         `json:"version"`
}

// ImportAgencies registers or updates agencies in bulk, idempotently: a
// line equal to its entry changes nothing. Each line is checked on its
// own (code, name, parent known or earlier in the import, no cycle, system
// registered); a bad line is reported and skipped, with the lines that
// depend on it, and the rest goes on. The directory is read once.
func (c *Client) ImportAgencies(ctx context.Context, lines []ImportLine, o ImportOptions) (*ImportResult, error) {
	if o.Chunk <= 0 {
		o.Chunk = 2000
	}
	cur, err := c.DirectoryChanges(ctx, 0)
	if err != nil {
		return nil, err
	}
	claim, err := c.claims(ctx)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{Version: cur.Version}
	current := make(map[string]*Agency, len(cur.Agencies)+len(lines))
	for i := range cur.Agencies {
		current[cur.Agencies[i].Code] = &cur.Agencies[i]
	}
	systems := map[string]bool{}
	for _, s := range cur.Systems {
		systems[s.ID] = s.Removed.IsZero()
	}
	// One line per code: a second one is an error, not a silent override.
	byCode := map[string]*ImportLine{}
	var order []*ImportLine
	for i := range lines {
		l := &lines[i]
		if first, ok := byCode[l.Agency.Code]; ok && l.Agency.Code != "" {
			res.Errors = append(res.Errors, &ImportError{Line: l.Line, Code: l.Agency.Code,
				Err: fmt.Errorf("%w: duplicate of line %d", ErrInvalidEntry, first.Line)})
			continue
		}
		byCode[l.Agency.Code] = l
		order = append(order, l)
	}
	// Parents first: a line is checked once the line of its parent (if
	// in the import) was, so the merged view below holds what was accepted.
	accepted := map[string]*Agency{}
	failed := map[string]int{}
	state := map[string]int{} // 1 visiting, 2 done
	var out []Agency
	prev := map[string]*Agency{}
	lookup := func(code string) (*Agency, bool) {
		if a, ok := accepted[code]; ok {
			return a, true
		}
		// A failed or pending line leaves the entry as it is: what is
		// below it stands on the entry in the directory, if any.
		if _, pending := byCode[code]; pending {
			if _, bad := failed[code]; !bad {
				return nil, false
			}
		}
		a, ok := current[code]
		return a, ok
	}
	var visit func(l *ImportLine)
	visit = func(l *ImportLine) {
		code := l.Agency.Code
		if state[code] != 0 {
			return
		}
		state[code] = 1
		fail := func(err error) {
			state[code] = 2
			failed[code] = l.Line
			res.Errors = append(res.Errors, &ImportError{Line: l.Line, Code: code, Err: err})
		}
		parent := l.Agency.Parent
		if p, ok := byCode[parent]; ok && parent != code {
			switch state[parent] {
			case 0:
				visit(p)
			case 1:
				// The parent's line is being checked further down this
				// chain: the lines make a cycle.
				fail(fmt.Errorf("%w: parent %s (line %d) makes a cycle", ErrInvalidEntry, parent, p.Line))
				return
			}
		}
		if state[code] == 2 {
			return // failed in a cycle closed below
		}
		state[code] = 2
		if strings.TrimSpace(l.Agency.Name) == "" {
			fail(fmt.Errorf("%w: no name", ErrInvalidEntry))
			return
		}
		if pl, bad := failed[parent]; bad && current[parent] == nil {
			fail(fmt.Errorf("%w: parent %s was not imported (line %d)", ErrInvalidEntry, l.Agency.Parent, pl))
			return
		}
		old := current[code]
		a := merge(old, l)
		if old != nil && sameEntry(old, &a) {
			res.Unchanged++
			accepted[code] = old
			return
		}
		if a.System != "" && (old == nil || old.System != a.System) || a.System == "" && old != nil && old.System != "" {
			if o.Bind == nil {
				fail(fmt.Errorf("%w: system %q needs a binding signed by the bus's CA (import with the bus's home)", ErrInvalidEntry, a.System))
				return
			}
			raw, err := o.Bind(signing.Binding{Agency: code, System: a.System})
			if err != nil {
				fail(err)
				return
			}
			a.Bindings = append(slices.Clone(a.Bindings), raw)
		}
		if err := c.checkAgency(ctx, &a, old, lookup, systems); err != nil {
			fail(unwrapRegister(err))
			return
		}
		if old == nil || old.Bus != a.Bus || !old.Withdrawn.IsZero() {
			if err := claim(code); err != nil {
				fail(unwrapRegister(err))
				return
			}
		}
		accepted[code] = &a
		prev[code] = old
		if old == nil {
			res.Added++
		} else {
			res.Updated++
		}
		out = append(out, a)
	}
	for _, l := range order {
		if l.Agency.Code == "" {
			res.Errors = append(res.Errors, &ImportError{Line: l.Line, Err: fmt.Errorf("%w: no code", ErrInvalidEntry)})
			continue
		}
		visit(l)
	}
	slices.SortFunc(res.Errors, func(a, b *ImportError) int { return a.Line - b.Line })
	for i := 0; i < len(out); i += o.Chunk {
		j := min(i+o.Chunk, len(out))
		if err := c.putAgencies(ctx, out[i:j], prev, false); err != nil {
			return res, fmt.Errorf("import: %d of %d entries written: %w", i, len(out), err)
		}
		if o.Progress != nil {
			o.Progress(j, len(out))
		}
	}
	if len(out) > 0 {
		if v, err := c.DirectoryChanges(ctx, res.Version); err == nil {
			res.Version = v.Version
		}
	}
	return res, nil
}

// merge applies an import line to the entry it updates.
func merge(old *Agency, l *ImportLine) Agency {
	a := l.Agency
	if old == nil {
		return a
	}
	m := *old
	m.Name = a.Name
	m.NonStandard = a.NonStandard || old.NonStandard
	for _, f := range l.Fields {
		switch f {
		case "parent":
			m.Parent = a.Parent
		case "old_code":
			m.OldCode = a.OldCode
		case "email":
			m.Email = a.Email
		case "system":
			m.System = a.System
		case "state":
			m.State = a.State
		}
	}
	return m
}

func sameEntry(a, b *Agency) bool {
	state := func(s string) string {
		if s == "" {
			return StateActive
		}
		return s
	}
	return a.Name == b.Name && a.Parent == b.Parent && a.OldCode == b.OldCode && a.Email == b.Email &&
		a.System == b.System && state(a.State) == state(b.State) && a.NonStandard == b.NonStandard
}

// unwrapRegister drops the "register CODE: " a line's error would repeat.
func unwrapRegister(err error) error {
	var ie *ImportError
	if errors.As(err, &ie) {
		return ie.Err
	}
	return err
}
