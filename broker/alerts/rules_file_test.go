package alerts_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"
)

// TestPrometheusRulesFile: the example rules file is a rules file, and
// every docaxis_alert series it uses is one the bus exposes.
func TestPrometheusRulesFile(t *testing.T) {
	b, err := os.ReadFile("../../deploy/prometheus-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		var m alerts.Manager
		m.Collector().Describe(ch)
		close(ch)
	}()
	for d := range ch {
		exposed[regexp.MustCompile(`fqName: "([a-z_]+)"`).FindStringSubmatch(d.String())[1]] = true
	}
	used := regexp.MustCompile(`docaxis_alert[a-z_]*`)
	rules := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			rules++
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("group %s: rule %+v lacks alert, expr or summary", g.Name, r)
			}
			for _, name := range used.FindAllString(r.Expr, -1) {
				if !exposed[name] {
					t.Errorf("rule %s uses %s, which the bus does not expose", r.Alert, name)
				}
			}
		}
	}
	for _, rule := range alerts.Rules {
		if !strings.Contains(string(b), `rule="`+string(rule)+`"`) {
			t.Errorf("no rule forwards %s", rule)
		}
	}
	if rules < len(alerts.Rules) {
		t.Fatalf("%d rules", rules)
	}
}
