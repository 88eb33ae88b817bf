package apptest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/usipipo/usipipo/app"
	"github.com/usipipo/usipipo/app/apptest"
)

// The service layer runs on the Node's store and reads the Node's clock;
// an option reaches the service's options.
func TestNodeServesOnItsStoreAndClock(t *testing.T) {
	n := apptest.New(t, func(o *app.Options) { o.AdminIDs = []int64{7} })
	ctx := context.Background()
	n.Clock.Add(time.Hour)
	u, err := n.Svc.RegisterUser(ctx, app.ActorCLI, app.NewUser{TelegramID: 7})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := n.Store.User(u.ID)
	if err != nil {
		t.Fatalf("the user is not in the Node's store: %v", err)
	}
	if want := apptest.Start().Add(time.Hour); !rec.Created.Equal(want) {
		t.Errorf("created at %v, want the Node's clock %v", rec.Created, want)
	}
	if !n.Svc.IsAdmin(ctx, 7) {
		t.Error("the AdminIDs option did not reach the service")
	}
}

// Components read the clock from their own goroutines while the test moves
// it (run with -race).
func TestClockConcurrent(t *testing.T) {
	c := apptest.NewClock(apptest.Start())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Add(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if got, want := c.Now(), apptest.Start().Add(400*time.Second); !got.Equal(want) {
		t.Fatalf("after 400 one-second steps: %v, want %v", got, want)
	}
	c.Set(time.Time{})
	if !c.Now().IsZero() {
		t.Fatal("Set did not set")
	}
}
