package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usipipo/usipipo/store/model"
)

// Meta is what the caller decides about a command before it is applied: when
// it happened and who asked. Apply never reads the clock; it uses At.
type Meta struct {
	At    time.Time `json:"at"`
	Actor string    `json:"actor"` // "cli", "system", "api:<key id>", "bot:<telegram id>", "admin:<name>"
}

// Command is a domain command. plan checks every invariant against a
// read-only view and returns the mutation to perform; a mutation fails only
// on storage errors, which abort the whole group.
type Command interface {
	// Kind is the command's stable, versioned type name, e.g. "key.create/1".
	Kind() string
	plan(v *view, m Meta) (mutation, error)
}

type mutation func(w *writer) error

// Op is a command with its meta.
type Op struct {
	Meta
	Cmd Command
}

// userScoped commands name the user they concern, for the audit index.
type userScoped interface{ auditUser() string }

// redactor commands return a copy of themselves fit for the audit trail:
// sealed blobs that must die with a user (per-user keys) and large bodies
// are removed.
type redactor interface{ redacted() any }

// ApplyBatch applies ops in order in one write transaction. A command that
// fails its checks is rejected alone (its error is returned at its index and
// the audit trail records the refusal); the others commit. err is non-nil only
// when the transaction itself failed, in which case nothing was written.
func (s *Store) ApplyBatch(ops []Op) (errs []error, err error) {
	errs = make([]error, len(ops))
	err = s.db.Update(func(tx *bolt.Tx) error {
		return applyOps(tx, ops, errs)
	})
	if err != nil {
		return nil, fmt.Errorf("applying %d commands: %w", len(ops), err)
	}
	return errs, nil
}

func applyOps(tx *bolt.Tx, ops []Op, errs []error) error {
	w := newWriter(tx)
	for i, op := range ops {
		var err error
		if errs[i], err = applyOne(w, op); err != nil {
			return err
		}
	}
	return nil
}

func newWriter(tx *bolt.Tx) *writer { return &writer{tx: tx, view: view{tx: tx}} }

// applyOne plans and applies one command and appends its audit entry. It
// returns the command's domain error (it was refused; the transaction goes
// on) or a storage error (the transaction must fail).
func applyOne(w *writer, op Op) (refused, err error) {
	mut, refused := op.Cmd.plan(&w.view, op.Meta)
	if refused == nil {
		if err := mut(w); err != nil {
			return nil, fmt.Errorf("%s: %w", op.Cmd.Kind(), err)
		}
	}
	return refused, appendAudit(w, op, refused)
}

func appendAudit(w *writer, op Op, failure error) error {
	var body any = op.Cmd
	if r, ok := op.Cmd.(redactor); ok {
		body = r.redacted()
	}
	b, err := encode(body)
	if err != nil {
		return err
	}
	seq, err := w.tx.Bucket(bAudit).NextSequence()
	if err != nil {
		return fmt.Errorf("audit sequence: %w", err)
	}
	e := &model.AuditEntry{Seq: seq, At: op.At, Actor: op.Actor, Action: op.Cmd.Kind(), Command: b}
	if u, ok := op.Cmd.(userScoped); ok {
		e.UserID = u.auditUser()
	}
	if failure != nil {
		e.Error = failure.Error()
	}
	return put(w, audit, e)
}
