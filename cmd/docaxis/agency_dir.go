package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/operations"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/spf13/cobra"
)

// signBinding signs the binding of an agency to a system (or its end) with
// the home's CA.
func signBinding(ks *signing.Keystore, b signing.Binding) (string, error) {
	return operations.New(nil, ks).SignBinding(b)
}

// addServedAgency registers (or moves) an agency served by a system: no
// key of its own, a signed binding to the system.
func addServedAgency(cmd *cobra.Command, c *broker.Client, ks *signing.Keystore, code string) error {
	f := agencyAddFlags
	if f.importKey != "" || f.importCert != "" {
		return errors.New("--system and --import-key/--import-cert exclude each other: a system signs for its agencies")
	}
	a, err := operations.New(c, ks).AddServedAgency(cmd.Context(), operations.ServedAgency{
		Agency: broker.Agency{Code: code, Name: f.name, NonStandard: f.nonstandard, System: f.system, Parent: f.parent, Email: f.email, OldCode: f.oldCode}})
	if err != nil {
		return err
	}
	if f.json {
		a.Certificate = ""
		return printJSON(cmd, a)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "registered %s %s (served by system %s)\n", code, f.name, f.system)
	return nil
}

var importFlags struct {
	json   bool
	format string
}

var agencyImportCmd = &cobra.Command{
	Use:   "import FILE",
	Short: "register or update agencies in bulk from JSON lines or CSV (a national directory export)",
	Long: `Registers or updates every agency of FILE ('-' for standard input): JSON lines,
one object per agency with the fields code, name, parent, old_code, email,
system (all but code and name optional), or CSV with those column headers.
Idempotent: a line equal to its entry changes nothing. A bad line (malformed,
duplicate, unknown parent or system, a cycle) is reported with its number and
skipped, with the lines below it in the hierarchy; the others are applied.
Exits with status 1 when some line failed.`,
	Args: cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		var r io.Reader = cmd.InOrStdin()
		if args[0] != "-" {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		lines, bad, err := readImport(r, importFlags.format, args[0])
		if err != nil {
			return err
		}
		ks, err := keystore()
		if err != nil {
			return err
		}
		var prog func(int64)
		start := time.Now()
		res, err := c.ImportAgencies(cmd.Context(), lines, broker.ImportOptions{
			Bind: func(b signing.Binding) (string, error) { return signBinding(ks, b) },
			Progress: func(done, total int) {
				if prog == nil {
					prog = progressFor(cmd, "import", int64(total), importFlags.json)
				}
				if prog != nil {
					prog(int64(done))
				}
			},
		})
		if res != nil {
			res.Errors = append(bad, res.Errors...)
		}
		if err != nil {
			return err
		}
		for _, e := range res.Errors {
			if importFlags.json {
				_ = printJSON(cmd, map[string]any{"line": e.Line, "code": e.Code, "error": e.Err.Error()})
			} else {
				fmt.Fprintln(cmd.ErrOrStderr(), e.Error())
			}
		}
		if importFlags.json {
			_ = printJSON(cmd, map[string]any{"added": res.Added, "updated": res.Updated, "unchanged": res.Unchanged,
				"failed": len(res.Errors), "version": res.Version, "seconds": time.Since(start).Seconds()})
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d lines: %d added, %d updated, %d unchanged, %d failed (directory version %d, %s)\n",
				len(lines)+len(bad), res.Added, res.Updated, res.Unchanged, len(res.Errors), res.Version, time.Since(start).Round(time.Millisecond))
		}
		if len(res.Errors) > 0 {
			return errImportFailed
		}
		return nil
	}),
}

var errImportFailed = errors.New("some lines were not imported (see above)")

// importFields are the columns of an import.
var importFields = []string{"code", "name", "parent", "old_code", "email", "system"}

// readImport reads JSON lines or CSV (by format, or guessed from the
// first non-blank byte). Lines that do not parse are returned as errors.
func readImport(r io.Reader, format, name string) ([]broker.ImportLine, []*broker.ImportError, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if format == "" {
		format = "jsonl"
		if strings.HasSuffix(strings.ToLower(name), ".csv") {
			format = "csv"
		} else if b, err := br.Peek(1); err == nil && b[0] != '{' && b[0] != ' ' && b[0] != '\n' {
			format = "csv"
		}
	}
	var lines []broker.ImportLine
	var bad []*broker.ImportError
	add := func(n int, fields map[string]string, set []string) {
		for k := range fields {
			if !contains(importFields, k) && k != "state" && k != "nonstandard" {
				bad = append(bad, &broker.ImportError{Line: n, Code: fields["code"], Err: fmt.Errorf("%w: unknown field %q", broker.ErrInvalidEntry, k)})
				return
			}
		}
		a := broker.Agency{Code: strings.TrimSpace(fields["code"]), Name: strings.TrimSpace(fields["name"]), Parent: strings.TrimSpace(fields["parent"]),
			OldCode: strings.TrimSpace(fields["old_code"]), Email: strings.TrimSpace(fields["email"]), System: strings.TrimSpace(fields["system"]),
			State: strings.TrimSpace(fields["state"])}
		a.NonStandard, _ = strconv.ParseBool(fields["nonstandard"])
		if a.Code != "" && !a.NonStandard && envelope.CheckCode(a.Code) != nil && envelope.CheckNonStandardCode(a.Code) == nil {
			bad = append(bad, &broker.ImportError{Line: n, Code: a.Code, Err: envelope.CheckCode(a.Code)})
			return
		}
		lines = append(lines, broker.ImportLine{Line: n, Agency: a, Fields: set})
	}
	switch format {
	case "csv":
		cr := csv.NewReader(br)
		cr.FieldsPerRecord = -1
		header, err := cr.Read()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: CSV header: %w", name, err)
		}
		for i := range header {
			header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")))
		}
		if !contains(header, "code") || !contains(header, "name") {
			return nil, nil, fmt.Errorf("%s: CSV header %v: want at least the columns code and name", name, header)
		}
		for n := 2; ; n++ {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					bad = append(bad, &broker.ImportError{Line: pe.Line, Err: fmt.Errorf("%w: %v", broker.ErrInvalidEntry, pe.Err)})
					continue
				}
				return nil, nil, err
			}
			if len(rec) != len(header) {
				bad = append(bad, &broker.ImportError{Line: n, Err: fmt.Errorf("%w: %d columns, the header has %d", broker.ErrInvalidEntry, len(rec), len(header))})
				continue
			}
			fields := map[string]string{}
			var set []string
			for i, h := range header {
				fields[h] = rec[i]
				if rec[i] != "" {
					set = append(set, h)
				}
			}
			add(n, fields, set)
		}
	case "jsonl", "json":
		sc := bufio.NewScanner(br)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" {
				continue
			}
			raw := map[string]any{}
			if err := json.Unmarshal([]byte(line), &raw); err != nil {
				bad = append(bad, &broker.ImportError{Line: n, Err: fmt.Errorf("%w: %v", broker.ErrInvalidEntry, err)})
				continue
			}
			if err := envelope.CheckJSONKeys([]byte(line)); err != nil {
				bad = append(bad, &broker.ImportError{Line: n, Err: fmt.Errorf("%w: %v", broker.ErrInvalidEntry, err)})
				continue
			}
			fields := map[string]string{}
			var set []string
			ok := true
			for k, v := range raw {
				switch v := v.(type) {
				case string:
					fields[k] = v
				case bool:
					fields[k] = strconv.FormatBool(v)
				case nil:
					fields[k] = ""
				default:
					bad = append(bad, &broker.ImportError{Line: n, Err: fmt.Errorf("%w: field %q is not a string", broker.ErrInvalidEntry, k)})
					ok = false
				}
				if !ok {
					break
				}
				set = append(set, k)
			}
			if ok {
				add(n, fields, set)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	default:
		return nil, nil, fmt.Errorf("--format %q: want jsonl or csv", format)
	}
	return lines, bad, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var agencyStateCmd = func(use, state, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CODE",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
			a, err := c.LookupAgency(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			a.State = state
			if err := c.RegisterAgency(cmd.Context(), *a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", args[0], state)
			return nil
		}),
	}
}

var agencyTreeCmd = &cobra.Command{
	Use:   "tree [CODE]",
	Short: "show the hierarchy below CODE (the whole directory without one)",
	Args:  cobra.MaximumNArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		all, err := c.DirectoryChanges(cmd.Context(), 0)
		if err != nil {
			return err
		}
		children := map[string][]broker.Agency{}
		known := map[string]broker.Agency{}
		for _, a := range all.Agencies {
			children[a.Parent] = append(children[a.Parent], a)
			known[a.Code] = a
		}
		w := bufio.NewWriter(cmd.OutOrStdout())
		defer w.Flush()
		var walk func(code string, depth int)
		walk = func(code string, depth int) {
			for _, a := range children[code] {
				printTreeLine(w, a, depth)
				walk(a.Code, depth+1)
			}
		}
		if len(args) == 0 {
			walk("", 0)
			return nil
		}
		root, ok := known[args[0]]
		if !ok {
			return fmt.Errorf("%w %s", broker.ErrUnknownAgency, args[0])
		}
		printTreeLine(w, root, 0)
		walk(root.Code, 1)
		return nil
	}),
}

func printTreeLine(w io.Writer, a broker.Agency, depth int) {
	extra := ""
	if a.System != "" {
		extra += " [system " + a.System + "]"
	}
	if a.State != "" && a.State != broker.StateActive {
		extra += " (" + a.State + ")"
	}
	fmt.Fprintf(w, "%s%s  %s%s\n", strings.Repeat("  ", depth), a.Code, a.Name, extra)
}

var agencyListFlags struct {
	since  uint64
	parent string
}

func printAgencies(cmd *cobra.Command, list []broker.Agency, version uint64, asJSON bool) error {
	if asJSON {
		for _, a := range list {
			a.Certificate, a.Bindings = "", nil
			if err := printJSON(cmd, a); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tNAME\tPARENT\tSYSTEM\tSTATE\tVERSION")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", a.Code, a.Name, a.Parent, a.System, a.State, a.Version)
	}
	if version > 0 {
		fmt.Fprintf(tw, "directory version %d\n", version)
	}
	return tw.Flush()
}

func init() {
	agencyImportCmd.Flags().BoolVar(&importFlags.json, "json", false, "report as JSON lines")
	agencyImportCmd.Flags().StringVar(&importFlags.format, "format", "", "jsonl or csv (default: from the file name or its first byte)")
	agencyTreeCmd.Flags().Bool("json", false, "unused: the tree is text")
	agencyListCmd.Flags().Uint64Var(&agencyListFlags.since, "since", 0, "only what changed after this directory version (deletions included)")
	agencyListCmd.Flags().StringVar(&agencyListFlags.parent, "parent", "", "only the agencies directly below this code")
	agencyCmd.AddCommand(agencyImportCmd, agencyTreeCmd,
		agencyStateCmd("delete", broker.StateDeleted, "delete an agency: new mail to it is refused, its history stays on record"),
		agencyStateCmd("suspend", broker.StateSuspended, "suspend an agency: new mail to it is refused until it is resumed"),
		agencyStateCmd("resume", broker.StateActive, "resume a suspended agency"))
}
