package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A layer is what one source gives: for each setting it names, the values
// in order, each with where it came from.
type layer map[string][]sourced

type sourced struct {
	value  string
	source string
}

// Parse reads the settings from args (the command line without the program
// and subcommand names), the environment through lookupEnv (os.LookupEnv in
// production; nil means an empty environment) and the settings file named by
// --config or USIPIPO_CONFIG (--config="" reads none), and converts each
// value to its type. It does not touch the machine beyond reading that file:
// call Validate before use.
//
// It returns flag.ErrHelp for -h or --help, and otherwise stops at the first
// problem: an *Error for a bad value, or an error naming the flag, argument or
// file line it cannot read. It prints nothing; Usage writes the help text.
func Parse(args []string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	flags, err := parseFlags(args)
	if err != nil {
		return nil, err
	}
	env := envLayer(lookupEnv)

	c := Default()
	c.sources = make(map[string]string)
	var file layer
	if given := highest(flags[configSetting], env[configSetting]); len(given) > 0 && given[len(given)-1].value != "" {
		from := given[len(given)-1]
		if file, err = readFile(from.value, from.source); err != nil {
			return nil, err
		}
		c.File = from.value
		c.sources[configSetting] = from.source
	}
	for _, s := range settings {
		vals := highest(flags[s.name], env[s.name], file[s.name])
		if len(vals) == 0 {
			continue
		}
		if s.repeatable {
			s.reset(c)
		}
		for _, v := range vals {
			if err := s.set(c, v.value); err != nil {
				shown := v.value
				if s.secret && shown != "" {
					shown = redactedText
				}
				return nil, &Error{Setting: s.name, Value: shown, Source: v.source, Err: err}
			}
		}
		c.sources[s.name] = vals[0].source
	}
	return c, nil
}

// highest returns the values of the first layer, highest precedence first,
// that gives any: one layer's list replaces the lower layers' whole.
func highest(lists ...[]sourced) []sourced {
	for _, l := range lists {
		if len(l) > 0 {
			return l
		}
	}
	return nil
}

// parseFlags reads the command line into a layer, values unconverted, so
// that conversion errors look the same whatever the source.
func parseFlags(args []string) (layer, error) {
	l := layer{}
	fs := flag.NewFlagSet("usipipo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Var(flagValue{l, &setting{name: configSetting}}, configSetting, "")
	for _, s := range settings {
		fs.Var(flagValue{l, s}, s.name, s.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, flag.ErrHelp
		}
		return nil, flagError(err)
	}
	if fs.NArg() > 0 {
		hint := "settings are --name value"
		if _, err := strconv.ParseBool(fs.Arg(0)); err == nil {
			hint = `a yes/no flag takes its value after "=", as in --public-api=true`
		}
		return nil, fmt.Errorf("config: unexpected argument %q (%s)", fs.Arg(0), hint)
	}
	return l, nil
}

// flagValue records a flag's text into a layer.
type flagValue struct {
	l layer
	s *setting
}

func (f flagValue) String() string { return "" }

func (f flagValue) Set(v string) error {
	if f.s.repeatable {
		f.l[f.s.name] = append(f.l[f.s.name], sourced{v, sourceFlag})
	} else {
		f.l[f.s.name] = []sourced{{v, sourceFlag}}
	}
	return nil
}

func (f flagValue) IsBoolFlag() bool { return f.s.boolean }

// flagError rewords the flag package's errors in --name terms.
func flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return fmt.Errorf("config: unknown flag --%s (see --help)", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("config: --%s needs a value", name)
	}
	return fmt.Errorf("config: %w", err)
}

// envName is the environment variable for a setting: USIPIPO_WG_LISTEN for
// wg-listen.
func envName(name string) string {
	return "USIPIPO_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// envLayer reads the environment. An empty variable counts as not set; a
// repeatable setting's variable is a comma-separated list.
func envLayer(lookupEnv func(string) (string, bool)) layer {
	l := layer{}
	names := []string{configSetting}
	for _, s := range settings {
		names = append(names, s.name)
	}
	for _, name := range names {
		key := envName(name)
		v, ok := lookupEnv(key)
		if !ok || v == "" {
			continue
		}
		if s := settingByName[name]; s != nil && s.repeatable {
			for item := range strings.SplitSeq(v, ",") {
				if item = strings.TrimSpace(item); item != "" {
					l[name] = append(l[name], sourced{item, key})
				}
			}
			continue
		}
		l[name] = []sourced{{v, key}}
	}
	return l
}
