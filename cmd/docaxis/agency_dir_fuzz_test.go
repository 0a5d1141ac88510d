package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

// FuzzReadImport: any input, read as JSON lines or CSV, gives lines and
// per-line errors or one error for the whole file, never a panic; each
// line has a valid line number, no unflagged non-standard code, and only
// fields of the format; each error names its line.
func FuzzReadImport(f *testing.F) {
	for _, s := range []string{
		`{"code":"000.00.00.H01","name":"UBND tỉnh 1"}` + "\n" + `{"code":"000.00.01.H01","name":"Sở","parent":"000.00.00.H01","system":"dms-a"}`,
		`{"code":"000.00.00.H01","name":7}`,
		`{"code":"000.00.00.H01","name":"a","Name":"b"}`,
		`{"code":"x","name":"a","nonstandard":true}`,
		"{\"code\":null}\n\n{}\n[1]\nnot json",
		"\ufeffcode,name,parent,old_code,email,system\n000.00.00.H01,\"UBND, tỉnh\",,,a@b.vn,\n000.00.01.H01,Sở,000.00.00.H01,,,dms-a\n",
		"code,name\n\"unterminated\n",
		"code,name\na,b,c\n",
		"name\nx\n",
	} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), "csv")
		f.Add([]byte(s), "jsonl")
	}
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		if format != "" && format != "csv" && format != "jsonl" {
			format = ""
		}
		lines, bad, err := readImport(bytes.NewReader(data), format, "fuzz")
		if err != nil {
			if len(lines) != 0 || len(bad) != 0 {
				t.Fatalf("error %v with %d lines and %d line errors", err, len(lines), len(bad))
			}
			return
		}
		for _, l := range lines {
			if l.Line < 1 {
				t.Fatalf("line number %d", l.Line)
			}
			a := l.Agency
			// An invalid code is left to the import, which refuses it with
			// its line; one that is only non-standard must be flagged.
			if a.Code != "" && !a.NonStandard && envelope.CheckCode(a.Code) != nil && envelope.CheckNonStandardCode(a.Code) == nil {
				t.Fatalf("line %d: non-standard code %q passed unflagged", l.Line, a.Code)
			}
			for _, f := range l.Fields {
				if !contains(importFields, f) && f != "state" && f != "nonstandard" {
					t.Fatalf("line %d: field %q", l.Line, f)
				}
			}
		}
		for _, e := range bad {
			if e.Line < 1 || e.Err == nil || !errors.Is(e, broker.ErrInvalidEntry) && !errors.Is(e, envelope.ErrInvalidCode) {
				t.Fatalf("line error %+v", e)
			}
		}
	})
}
