package config

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
)

// Usage writes the help text for the settings: each flag with its
// placeholder, meaning, default and environment variable.
func Usage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "Each setting is a flag --name, an environment variable USIPIPO_<NAME> (--wg-listen is\n"+
		"USIPIPO_WG_LISTEN; lists comma-separated) or a line \"name = value\" of the --config file.\n"+
		"A flag wins over the environment, which wins over the file.\n\n")
	fmt.Fprintf(tw, "  --%s FILE\tread settings from FILE\n", configSetting)
	def := Default()
	for _, s := range settings {
		flag := "--" + s.name
		if s.meta != "" {
			flag += " " + s.meta
		}
		usage := s.usage
		switch d := joinValues(s.show(def)); {
		case s.defText != "":
			usage += fmt.Sprintf(" (default: %s)", s.defText)
		case d != "" && d != "false":
			usage += fmt.Sprintf(" (default %s)", d)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", flag, usage)
	}
	return tw.Flush()
}

// Redacted returns every setting by name, as text fit for a log line: lists
// comma-joined, the bot token as "[redacted]" and URL passwords as "xxxxx".
// The "config" key names the settings file read, if any.
func (c *Config) Redacted() map[string]string {
	m := make(map[string]string, len(settings)+1)
	for _, s := range settings {
		m[s.name] = joinValues(s.show(c))
	}
	if c.File != "" {
		m[configSetting] = c.File
	}
	return m
}

// LogValue renders the settings as a group in settings order, redacted as
// Redacted does, so slog.Any("config", c) is safe to log.
func (c *Config) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(settings)+1)
	if c.File != "" {
		attrs = append(attrs, slog.String(configSetting, c.File))
	}
	for _, s := range settings {
		attrs = append(attrs, slog.String(strings.ReplaceAll(s.name, "-", "_"), joinValues(s.show(c))))
	}
	return slog.GroupValue(attrs...)
}
