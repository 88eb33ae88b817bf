package store

import (
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/usipipo/usipipo/store/model"
)

// FuzzPageCursor: the "after" cursor comes from the API's query string, so
// from anyone. Whatever it holds, a list answers ErrInvalid or a page that
// is a run of the list in its order, at most the limit long, whose next
// cursors lead to the list's end without a repeat or a gap; a cursor the
// list made resumes right after the item it ended on.
func FuzzPageCursor(f *testing.F) {
	s := openTest(f)
	g := newIDs(7)
	var first string
	for i := range 12 {
		u := newUser(g, epoch, int64(1000+i))
		if i == 0 {
			first = u.ID
		}
		mustDo(f, s, epoch, u)
	}
	for i := range 4 { // a few audit entries of one user, for the index list
		mustDo(f, s, epoch, SetBanned{UserID: first, Banned: i%2 == 0, Reason: "fuzz"})
	}
	lists := []func(Page) ([]string, string, error){
		func(p Page) ([]string, string, error) { // ascending, whole bucket
			us, next, err := s.Users(p)
			var out []string
			for _, u := range us {
				out = append(out, u.ID)
			}
			return out, next, err
		},
		func(p Page) ([]string, string, error) { // newest first, whole bucket
			es, next, err := s.Audit(AuditFilter{}, p)
			return seqs(es), next, err
		},
		func(p Page) ([]string, string, error) { // newest first, under an index prefix
			es, next, err := s.Audit(AuditFilter{UserID: first}, p)
			return seqs(es), next, err
		},
	}
	fulls, mids := make([][]string, len(lists)), make([]string, len(lists))
	for i, l := range lists {
		all, next, err := l(Page{Limit: MaxLimit})
		if err != nil || next != "" || len(all) == 0 {
			f.Fatalf("list %d: %d items, %q, %v", i, len(all), next, err)
		}
		fulls[i] = all
		_, mids[i], _ = l(Page{Limit: 2})
		f.Add(uint8(i), mids[i], int16(3))
	}
	f.Add(uint8(0), "", int16(0))
	f.Add(uint8(0), "!!", int16(5))
	f.Add(uint8(1), base64.RawURLEncoding.EncodeToString([]byte{0xff, 0xff}), int16(-1))
	f.Add(uint8(2), base64.RawURLEncoding.EncodeToString([]byte("u")), int16(600))
	f.Add(uint8(0), base64.RawURLEncoding.EncodeToString([]byte{0}), int16(1))
	f.Fuzz(func(t *testing.T, which uint8, after string, limit int16) {
		i := int(which) % len(lists)
		list, full := lists[i], fulls[i]
		p := Page{After: after, Limit: int(limit)}
		page, next, err := list(p)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("list %d after %q: %v", i, after, err)
			}
			return
		}
		if len(page) > p.limit() {
			t.Fatalf("list %d: %d items over the limit %d", i, len(page), p.limit())
		}
		// The page and the pages after it are the list's tail.
		got := slices.Clone(page)
		for n := 0; next != ""; n++ {
			if n > len(full) {
				t.Fatalf("list %d after %q: the pages do not end", i, after)
			}
			var more []string
			more, next, err = list(Page{After: next, Limit: int(limit)})
			if err != nil || len(more) == 0 {
				t.Fatalf("list %d: a next cursor led to %d items, %v", i, len(more), err)
			}
			got = append(got, more...)
		}
		if len(got) > len(full) || !slices.Equal(got, full[len(full)-len(got):]) {
			t.Fatalf("list %d after %q: %v is no tail of %v", i, after, got, full)
		}
		if after != "" && after == mids[i] && len(got) != len(full)-2 {
			t.Fatalf("list %d: the cursor after 2 items resumed %d from the end: %v of %v", i, len(got), got, full)
		}
	})
}

func seqs(es []model.AuditEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, strconv.FormatUint(e.Seq, 10))
	}
	return out
}
