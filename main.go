// Command usipipo turns a VPS into a complete uSipipo node: a Telegram bot
// that sells VPN access, WireGuard, Outline and MTProto served by the node
// itself, a REST API, a local web panel and metrics, in one static binary.
// See README.md and `usipipo help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/usipipo/usipipo/app/cli"
)

// version is stamped by the release build (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.OS(version))
	stop()
	os.Exit(code)
}
