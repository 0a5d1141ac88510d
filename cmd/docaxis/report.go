package main

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/report"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/spf13/cobra"
)

var reportFlags struct {
	from, to string
	by       string
	period   string
	csv      bool
	json     bool
}

var reportCmd = &cobra.Command{
	Use:   "report --from DATE --to DATE [--by agency|system|province] [--period day|month|all] [--csv|--json]",
	Short: "count documents sent, received, delivered, rejected and overdue per period",
	Long: `Count what crossed the bus between two dates (Vietnam time, --to included):
documents sent (envelopes) and received (copies), and of the copies received
how many were delivered, rejected, invalid and overdue, with delivery-time
percentiles. The figures come from the bus's tracking, as verified from the
record. --by groups them per agency, per document system or per province
(the top of the directory's hierarchy).`,
	Args: cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		f := reportFlags
		if f.csv && f.json {
			return fmt.Errorf("--csv and --json: choose one")
		}
		from, err := time.ParseInLocation(time.DateOnly, f.from, edxml.Vietnam)
		if err != nil {
			return fmt.Errorf("--from %q: want a date YYYY-MM-DD", f.from)
		}
		to, err := time.ParseInLocation(time.DateOnly, f.to, edxml.Vietnam)
		if err != nil {
			return fmt.Errorf("--to %q: want a date YYYY-MM-DD", f.to)
		}
		r, err := report.Make(cmd.Context(), c, report.Options{From: from, To: to.AddDate(0, 0, 1),
			By: report.By(f.by), Period: report.Period(f.period)})
		if err != nil {
			return err
		}
		switch {
		case f.json:
			return printJSON(cmd, r)
		case f.csv:
			return writeReportCSV(cmd, r)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "PERIOD\tGROUP\tSENT\tRECEIVED\tDELIVERED\tREJECTED\tINVALID\tOVERDUE\tP50\tP90\tP99\t")
		rows := append(r.Rows, r.Total)
		for i, row := range rows {
			key := row.Key
			if i == len(rows)-1 {
				key = "total"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t\n", row.Period, key, row.Sent, row.Received,
				row.Delivered, row.Rejected, row.Invalid, row.Overdue, reportSeconds(row.P50), reportSeconds(row.P90), reportSeconds(row.P99))
		}
		return tw.Flush()
	}),
}

func reportSeconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

func writeReportCSV(cmd *cobra.Command, r *report.Report) error {
	w := csv.NewWriter(cmd.OutOrStdout())
	_ = w.Write([]string{"period", "key", "name", "sent", "received", "delivered", "rejected", "invalid", "overdue",
		"delivery_p50_s", "delivery_p90_s", "delivery_p99_s"})
	rows := append(r.Rows, r.Total)
	for i, row := range rows {
		key := row.Key
		if i == len(rows)-1 {
			key = "total"
		}
		n := func(v int) string { return strconv.Itoa(v) }
		g := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
		_ = w.Write([]string{row.Period, key, row.Name, n(row.Sent), n(row.Received), n(row.Delivered), n(row.Rejected),
			n(row.Invalid), n(row.Overdue), g(row.P50), g(row.P90), g(row.P99)})
	}
	w.Flush()
	return w.Error()
}

func init() {
	f := reportCmd.Flags()
	f.StringVar(&reportFlags.from, "from", "", "first day YYYY-MM-DD (Vietnam time)")
	f.StringVar(&reportFlags.to, "to", "", "last day YYYY-MM-DD, included")
	f.StringVar(&reportFlags.by, "by", "", "group per agency, system or province (default: the whole bus)")
	f.StringVar(&reportFlags.period, "period", "month", "rows per day, month, or all (one row for the range)")
	f.BoolVar(&reportFlags.csv, "csv", false, "print CSV")
	f.BoolVar(&reportFlags.json, "json", false, "print JSON")
	_ = reportCmd.MarkFlagRequired("from")
	_ = reportCmd.MarkFlagRequired("to")
	rootCmd.AddCommand(reportCmd)
}
