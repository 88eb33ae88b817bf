// Package config holds a node's settings and reads them from the command
// line, the environment and an optional settings file.
//
// Every setting has one name, used three ways:
//
//   - a flag: --wg-listen :51820
//   - an environment variable: USIPIPO_WG_LISTEN=:51820 (the name upper-cased,
//     dashes turned to underscores; a repeatable setting takes a
//     comma-separated list, as in USIPIPO_EGRESS_ALLOW=10.0.0.0/8,fd00::/8;
//     an empty variable counts as not set)
//   - a line of the file named by --config FILE or USIPIPO_CONFIG:
//     "wg-listen = :51820"; "#" starts a comment (at the start of a line or
//     after a space), a value may be double-quoted, a repeatable setting is
//     given once per line, and an unknown name is an error naming file:line.
//
// For each setting the first source that gives it wins, in the order flag,
// environment, file, default. A repeatable setting takes all its values from
// that one source: a flag replaces the environment's and the file's list, it
// does not add to them.
//
// [Parse] reads the sources and converts every value to its type; [Config.Validate]
// checks the values against each other and the machine (addresses, URLs,
// files, the data directory, which it creates if missing). Either stops at
// the first problem with an [*Error] naming the setting, the value and where
// it came from:
//
//	config: --http "abc" (from USIPIPO_HTTP): invalid address: missing port in address
//
// Secrets ([Secret], the bot token) never appear in an error, a fmt verb,
// JSON, or a slog record; [Config.Redacted] renders all settings for a
// start-up log line.
package config
