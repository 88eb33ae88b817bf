package store

import (
	"errors"
	"testing"
)

func TestTelemetryTx(t *testing.T) {
	s := openTest(t)
	if err := s.ViewTelemetry(Updates, func(tx TelemetryTx) error {
		if tx.Has("a") || tx.Get("a") != nil {
			t.Error("value in an empty kind")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A write that depends on a read, in one transaction.
	if err := s.UpdateTelemetry(Updates, func(tx TelemetryTx) error {
		if !tx.Has("done") {
			return tx.Put("a", []byte("1"))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// fn's error writes nothing.
	boom := errors.New("boom")
	if err := s.UpdateTelemetry(Updates, func(tx TelemetryTx) error {
		if err := tx.Put("b", []byte("2")); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if err := s.UpdateTelemetry(Updates, func(tx TelemetryTx) error { return tx.Put("a", nil) }); err != nil {
		t.Fatal(err)
	}
	err := s.ViewTelemetry(Updates, func(tx TelemetryTx) error {
		if tx.Has("a") || tx.Has("b") {
			t.Errorf("a %q b %q: want both gone", tx.Get("a"), tx.Get("b"))
		}
		return tx.Put("c", []byte("3"))
	})
	if err == nil {
		t.Fatal("Put in a view succeeded")
	}
	if err := s.UpdateTelemetry(Telemetry("nope"), func(TelemetryTx) error { return nil }); err == nil {
		t.Fatal("unknown kind accepted")
	}
}
