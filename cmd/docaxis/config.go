package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// `docaxis serve --config FILE`: every serve setting from one YAML file
// whose keys are the flag names (--max-rate → max-rate). Precedence:
// flags > DOCAXIS_* environment (DOCAXIS_MAX_RATE) > file > defaults.
// Unknown keys, wrong types and duplicates are errors naming key and line:
// a typo must not leave a setting at its default unnoticed.

var serveConfigFile string

// ErrConfig is wrapped by every error of the configuration file.
var ErrConfig = errors.New("configuration")

// ConfigError names the file, line and key that are wrong.
type ConfigError struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: key %q: %v", e.File, e.Line, e.Key, e.Err)
}

func (e *ConfigError) Unwrap() []error { return []error{ErrConfig, e.Err} }

func init() {
	serveCmd.Flags().StringVar(&serveConfigFile, "config", "", "YAML file of serve settings, keys named as the flags (flags and DOCAXIS_* variables override it; env DOCAXIS_CONFIG)")
	// PersistentPreRunE runs before the PreRunE other files set.
	serveCmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return applyServeConfig(cmd.Flags(), os.Getenv)
	}
}

// configEnv is the environment variable of a setting: DOCAXIS_MAX_RATE.
func configEnv(name string) string {
	return "DOCAXIS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configSkip are flags that are not settings.
var configSkip = map[string]bool{"config": true, "help": true}

// applyServeConfig sets every flag not given on the command line from its
// DOCAXIS_* variable, else from the configuration file (--config, else
// DOCAXIS_CONFIG).
func applyServeConfig(fs *pflag.FlagSet, getenv func(string) string) error {
	path := serveConfigFile
	if !fs.Changed("config") {
		path = getenv("DOCAXIS_CONFIG")
	}
	var file map[string]configValue
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if file, err = parseConfig(path, b, fs); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if configSkip[f.Name] || f.Changed {
			return
		}
		if v := getenv(configEnv(f.Name)); v != "" {
			if err := setFlag(fs, f, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", configEnv(f.Name), v, err))
			}
			return
		}
		if cv, ok := file[f.Name]; ok {
			if err := setFlag(fs, f, cv.value); err != nil {
				errs = append(errs, &ConfigError{File: path, Line: cv.line, Key: f.Name, Err: err})
			}
		}
	})
	return errors.Join(errs...)
}

func setFlag(fs *pflag.FlagSet, f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		// A whole list replaces the default, never appends to it.
		var items []string
		if v != "" {
			items = strings.Split(v, ",")
		}
		if err := sv.Replace(items); err != nil {
			return err
		}
		f.Changed = true
		return nil
	}
	return fs.Set(f.Name, v)
}

// configValue is a checked setting: its value in flag syntax and its line.
type configValue struct {
	value string
	line  int
}

// parseConfig reads a YAML mapping of flag names to values and checks
// every key against fs and every value against the flag's type.
func parseConfig(path string, b []byte, fs *pflag.FlagSet) (map[string]configValue, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, ErrConfig, err)
	}
	out := map[string]configValue{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return out, nil // empty file: nothing set
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: path, Line: root.Line, Err: fmt.Errorf("want a mapping of setting: value, got %s", nodeKind(root))}
	}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			errs = append(errs, &ConfigError{File: path, Line: k.Line, Err: fmt.Errorf("want a setting name, got %s", nodeKind(k))})
			continue
		}
		f := fs.Lookup(k.Value)
		if f == nil || configSkip[k.Value] {
			errs = append(errs, &ConfigError{File: path, Line: k.Line, Key: k.Value, Err: errors.New("unknown key (settings are named as serve's flags: docaxis serve --help)")})
			continue
		}
		if prev, dup := out[k.Value]; dup {
			errs = append(errs, &ConfigError{File: path, Line: k.Line, Key: k.Value, Err: fmt.Errorf("set twice (first on line %d)", prev.line)})
			continue
		}
		val, err := configScalar(f, v)
		if err != nil {
			errs = append(errs, &ConfigError{File: path, Line: v.Line, Key: k.Value, Err: err})
			continue
		}
		out[k.Value] = configValue{value: val, line: v.Line}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// configScalar checks v against the flag's type and returns it in the
// flag's own syntax.
func configScalar(f *pflag.Flag, v *yaml.Node) (string, error) {
	typ := f.Value.Type()
	if strings.HasSuffix(typ, "Slice") || strings.HasSuffix(typ, "Array") {
		nodes := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			nodes = v.Content
		}
		var items []string
		for _, n := range nodes {
			if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || (typ == "stringSlice" || typ == "stringArray") && n.Tag != "!!str" {
				return "", fmt.Errorf("want a list of %s, got %s", strings.TrimSuffix(strings.TrimSuffix(typ, "Slice"), "Array")+"s", nodeKind(n))
			}
			if strings.Contains(n.Value, ",") {
				return "", fmt.Errorf("list item %q: write one item per entry, without commas", n.Value)
			}
			items = append(items, n.Value)
		}
		return strings.Join(items, ","), nil
	}
	if v.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want %s, got %s", typeWord(typ), nodeKind(v))
	}
	tag := v.Tag
	switch typ {
	case "string":
		if tag != "!!str" {
			return "", fmt.Errorf("want a string, got %s (quote it)", nodeKind(v))
		}
	case "bool":
		if tag != "!!bool" {
			return "", fmt.Errorf("want true or false, got %s", nodeKind(v))
		}
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		if tag != "!!int" {
			return "", fmt.Errorf("want a whole number, got %s", nodeKind(v))
		}
		if _, err := strconv.ParseInt(v.Value, 0, 64); err != nil {
			return "", fmt.Errorf("want a whole number, got %q", v.Value)
		}
	case "float32", "float64":
		if tag != "!!int" && tag != "!!float" {
			return "", fmt.Errorf("want a number, got %s", nodeKind(v))
		}
	case "duration":
		if tag != "!!str" {
			return "", fmt.Errorf("want a duration such as 90s, 15m or 87600h, got %s", nodeKind(v))
		}
		// Days and years ("7d", "10y") are checked by the flags that take
		// them (longDuration); the flag's own Set has the last word.
		if _, err := parseLongDuration(v.Value); err != nil {
			return "", fmt.Errorf("want a duration such as 90s, 15m or 87600h, got %q", v.Value)
		}
	default:
		if tag == "!!null" {
			return "", fmt.Errorf("want %s, got nothing", typeWord(typ))
		}
	}
	return v.Value, nil
}

func typeWord(typ string) string {
	switch typ {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "duration":
		return "a duration"
	case "float32", "float64":
		return "a number"
	}
	if strings.HasPrefix(typ, "int") || strings.HasPrefix(typ, "uint") {
		return "a whole number"
	}
	return "a " + typ
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!null":
		return "nothing"
	}
	return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
}
