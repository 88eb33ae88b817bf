package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// command is an admin verb's flags: every verb has --data and --json.
type command struct {
	fs   *flag.FlagSet
	data string
	json bool
	env  Env
}

func newCommand(name string, env Env) *command {
	c := &command{fs: flag.NewFlagSet(name, flag.ContinueOnError), env: env}
	c.fs.SetOutput(env.Stderr)
	def := "./data"
	if v, ok := env.LookupEnv("USIPIPO_DATA"); ok && v != "" {
		def = v
	}
	c.fs.StringVar(&c.data, "data", def, "data directory of the node (env USIPIPO_DATA)")
	c.fs.BoolVar(&c.json, "json", false, "print JSON for scripts")
	return c
}

// parse reads flags and positional arguments in any order (Go's flag
// package stops at the first positional one).
func (c *command) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errUsage
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = c.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// one expects exactly one positional argument, named what.
func (c *command) one(args []string, what string) (string, error) {
	pos, err := c.parse(args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		fmt.Fprintf(c.env.Stderr, "usipipo %s: expected one %s\n", c.fs.Name(), what)
		return "", errUsage
	}
	return pos[0], nil
}

// none expects no positional argument.
func (c *command) none(args []string) error {
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		fmt.Fprintf(c.env.Stderr, "usipipo %s: unexpected argument %q\n", c.fs.Name(), pos[0])
		return errUsage
	}
	return nil
}

func (c *command) socket() string { return filepath.Join(c.data, "admin.sock") }

// print writes v as JSON with --json, else human text from text.
func (c *command) print(v any, text func(w io.Writer)) error {
	if c.json {
		enc := json.NewEncoder(c.env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(c.env.Stdout)
	return nil
}

// table writes aligned columns.
func table(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len(cell))
		}
	}
	line := func(cells []string) {
		parts := make([]string, len(cells))
		for i, cell := range cells {
			parts[i] = cell + strings.Repeat(" ", widths[i]-len(cell))
		}
		fmt.Fprintln(w, strings.TrimRight(strings.Join(parts, "  "), " "))
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
}
