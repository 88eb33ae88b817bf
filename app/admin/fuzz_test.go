package admin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzReadLine: the admin socket reads a request line exactly when a
// newline ends it within the bound, whatever the reader's buffer size, and
// what it reads is that line; the line decodes as a request or is refused.
func FuzzReadLine(f *testing.F) {
	req, _ := json.Marshal(Request{Method: "user.add", Params: json.RawMessage(`{"telegram_id":123}`)})
	f.Add(append(req, '\n'), uint16(1<<10))
	f.Add(append(req, "\n{\"method\":\"next\"}\n"...), uint16(len(req)+1)) // a second line after the first
	f.Add(append(req, '\n'), uint16(len(req)))                             // one byte over the bound
	f.Add(bytes.Repeat([]byte("x"), 100), uint16(1<<10))                   // no newline
	f.Add([]byte("\n"), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		// bufio's smallest buffer, so that long lines take several reads.
		line, err := readLine(bufio.NewReaderSize(bytes.NewReader(in), 16), int(max))
		end := bytes.IndexByte(in, '\n') + 1
		if want := end > 0 && end <= int(max); want != (err == nil) {
			t.Fatalf("line of %d bytes (bound %d): %v", end, max, err)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(line, in[:end]) {
			t.Fatalf("read %q of %q", line, in)
		}
		var r Request
		if json.Unmarshal(line, &r) == nil {
			again, err := json.Marshal(r)
			var r2 Request
			if err != nil || json.Unmarshal(again, &r2) != nil || r2.Method != r.Method || r2.Stream != r.Stream {
				t.Fatalf("request %+v does not round-trip: %v", r, err)
			}
		}
	})
}
