package cli

import (
	"github.com/usipipo/usipipo/app/config"
	"github.com/usipipo/usipipo/app/node"
)

// checkOutlineAPI prints, when --outline-api is on, the line to paste into
// Outline Manager ("Add server" → "Paste your installation output").
func checkOutlineAPI(cfg *config.Config) []finding {
	if cfg.OutlineAPI == "" {
		return nil
	}
	line, err := node.OutlineAPIAccess(cfg)
	if err != nil {
		return []finding{bad("warn", "outline-api", err.Error(), "start the node with --outline-api, then run doctor again")}
	}
	return []finding{ok("outline-api", "paste into Outline Manager: "+line)}
}
