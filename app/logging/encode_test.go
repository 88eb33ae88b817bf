package logging

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendString: our JSON strings decode to what encoding/json's do.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x1f\n\r\t", "<>&", "\u2028\u2029", "ñandú 🦤", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ours := appendString(nil, s)
		var got string
		if err := json.Unmarshal(ours, &got); err != nil {
			t.Fatalf("%q -> invalid JSON %s: %v", s, ours, err)
		}
		theirs, _ := json.Marshal(s)
		var want string
		json.Unmarshal(theirs, &want)
		if got != want {
			t.Fatalf("%q: decodes to %q, want %q", s, got, want)
		}
	})
}

func TestAppendTimestamp(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2025, 10, 22, 12, 0, 0, 0, time.UTC), `"2025-10-22T12:00:00.000Z"`},
		{time.Date(2025, 1, 2, 3, 4, 5, 678999999, time.FixedZone("CST", -5*3600)), `"2025-01-02T08:04:05.678Z"`},
		{time.Date(999, 12, 31, 23, 59, 59, 1e6, time.UTC), `"0999-12-31T23:59:59.001Z"`},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), `"10000-01-01T00:00:00.000Z"`},
	} {
		if got := string(appendTimestamp(nil, tc.t)); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.t, got, tc.want)
		}
	}
}
