package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Reclaim takes back the sockets of an Export whose child did not take
// over (a failed upgrade): files are the duplicates Export returned, which
// the caller kept open. A file whose socket this process still serves on
// is closed; the others (their listeners were closed meanwhile, say to
// stop accepting) become passed sockets again, claimed by the next Listen
// or ListenPacket for the same name. Reclaim takes ownership of every file.
func (r *Registry) Reclaim(files []*os.File) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, f := range files {
		k, ok := decodeName(f.Name())
		switch {
		case r.closed:
			errs = append(errs, fmt.Errorf("listen: reclaim %s: registry closed: %w", f.Name(), net.ErrClosed))
		case !ok:
			errs = append(errs, fmt.Errorf("listen: reclaim: %q is not a name Export gives", f.Name()))
		case r.serving(k):
			// Still ours: the duplicate is not needed.
		default:
			r.inherited = append(r.inherited, &inherited{key: k, file: f})
			continue
		}
		f.Close()
	}
	return errors.Join(errs...)
}

// serving reports whether an open socket is registered under k. r.mu held.
func (r *Registry) serving(k key) bool {
	for _, e := range r.active {
		if e.key == k && !e.closed() {
			return true
		}
	}
	return false
}
