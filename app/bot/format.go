package bot

import (
	"fmt"
	"time"

	"github.com/usipipo/usipipo/store/model"
)

// size renders bytes as GiB or MiB.
func size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// day renders a date, or "—" for none.
func day(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02")
}

// usd renders cents as dollars.
func usd(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

// Short codes of protocols in callback data.
var typeCode = map[model.KeyType]string{model.WireGuard: "w", model.Outline: "o", model.MTProto: "m"}

func codeType(c string) (model.KeyType, bool) {
	for t, x := range typeCode {
		if x == c {
			return t, true
		}
	}
	return "", false
}

// typeName is a protocol as users know it.
func typeName(t model.KeyType) string {
	switch t {
	case model.WireGuard:
		return "WireGuard"
	case model.Outline:
		return "Outline"
	case model.MTProto:
		return "MTProto"
	}
	return string(t)
}
