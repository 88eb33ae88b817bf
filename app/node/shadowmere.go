package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/usipipo/usipipo/app/logging"
	"github.com/usipipo/usipipo/proxy/shadowmere"
)

// shadowmereHTTPTimeout bounds one request to the Shadowmere instance.
const shadowmereHTTPTimeout = 10 * time.Second

// startShadowmere runs the free proxy list when --shadowmere-url is set:
// fetched and checked at once, then on its schedule, through the egress
// dialer (so neither the instance nor a listed proxy can be a private
// address), until ctx ends. The service layer serves it as FreeProxies.
func (n *Node) startShadowmere(ctx context.Context, wg *sync.WaitGroup) error {
	if n.Config.ShadowmereURL == "" {
		n.Service.SetFreeProxySource(nil)
		return nil
	}
	l, err := shadowmere.New(shadowmere.Options{URL: n.Config.ShadowmereURL,
		HTTP: n.Egress.HTTPClient(shadowmereHTTPTimeout), Dial: n.Egress.DialContext,
		Log: logging.ForService(n.Log, "shadowmere")})
	if err != nil {
		return fmt.Errorf("--shadowmere-url: %w", err)
	}
	n.Service.SetFreeProxySource(l)
	wg.Go(func() { l.Run(ctx) })
	return nil
}
