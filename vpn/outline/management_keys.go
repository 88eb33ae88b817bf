package outline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// keyDoc renders a key with its ss:// URL on the node's current host.
func (a *managementAPI) keyDoc(ctx context.Context, k ManagedKey) (keyJSON, error) {
	s, err := a.m.Server(ctx)
	if err != nil {
		return keyJSON{}, err
	}
	return keyJSON{ID: k.ID, Name: k.Name, Password: k.Secret.Password, Port: k.Port, Method: k.Secret.Method,
		AccessURL: AccessKeyURL(s.Hostname, k.Port, k.Secret, k.Name), DataLimit: toLimit(k.DataLimit)}, nil
}

func (a *managementAPI) listKeys(c *fiber.Ctx) error {
	ctx := c.UserContext()
	keys, err := a.m.Keys(ctx)
	if err != nil {
		return fail(c, err)
	}
	out := make([]keyJSON, 0, len(keys))
	for _, k := range keys {
		d, err := a.keyDoc(ctx, k)
		if err != nil {
			return fail(c, err)
		}
		out = append(out, d)
	}
	return c.JSON(fiber.Map{"accessKeys": out})
}

// KeyCreatorWithID is the part of a Manager that serves
// PUT /access-keys/{id}: it creates a key under the id the caller chose,
// answering ErrConflict when the id is taken and ErrInvalid when the node
// cannot use it as an id. A Manager without it answers that call 501.
type KeyCreatorWithID interface {
	CreateKeyWithID(ctx context.Context, id string, k NewManagedKey) (ManagedKey, error)
}

// errIDNotAllowed is Outline's answer to POST /access-keys with an id.
var errIDNotAllowed = fmt.Errorf("parameter `id` is not allowed: %w", ErrInvalid)

// newKeyRequest reads a create request, with Outline's checks: no body at
// all is valid (Outline Manager posts none), an id in the body is not.
func newKeyRequest(c *fiber.Ctx) (NewManagedKey, error) {
	var req struct {
		ID       *json.RawMessage `json:"id"`
		Name     string           `json:"name"`
		Method   string           `json:"method"`
		Password string           `json:"password"`
		Port     int              `json:"port"`
		Limit    *limitJSON       `json:"limit"`
	}
	if len(c.Body()) > 0 {
		if err := body(c, &req); err != nil {
			return NewManagedKey{}, err
		}
	}
	if req.ID != nil {
		return NewManagedKey{}, errIDNotAllowed
	}
	if req.Method != "" {
		if _, ok := methods[req.Method]; !ok {
			return NewManagedKey{}, fmt.Errorf("cipher %q not supported: %w", req.Method, ErrInvalid)
		}
	}
	if req.Port < 0 || req.Port > 65535 {
		return NewManagedKey{}, fmt.Errorf("port %d out of range: %w", req.Port, ErrInvalid)
	}
	nk := NewManagedKey{Name: req.Name, Method: req.Method, Password: req.Password, Port: req.Port}
	if req.Limit != nil {
		if req.Limit.Bytes == nil || *req.Limit.Bytes < 0 {
			return NewManagedKey{}, fmt.Errorf("`limit.bytes` must be a non-negative integer: %w", ErrInvalid)
		}
		n := uint64(*req.Limit.Bytes)
		nk.DataLimit = &n
	}
	return nk, nil
}

func (a *managementAPI) createKey(c *fiber.Ctx) error {
	nk, err := newKeyRequest(c)
	if err != nil {
		return fail(c, err)
	}
	k, err := a.m.CreateKey(c.UserContext(), nk)
	return a.created(c, k, err)
}

// putKey is PUT /access-keys/{id}: create a key with the given id.
func (a *managementAPI) putKey(c *fiber.Ctx) error {
	kc, ok := a.m.(KeyCreatorWithID)
	if !ok {
		return c.Status(fiber.StatusNotImplemented).JSON(fiber.Map{"code": "NotImplemented",
			"message": "this node cannot create a key with a chosen id"})
	}
	// Fiber's params point into a buffer it reuses: the id is kept, so copied.
	id := strings.Clone(c.Params("id"))
	if id == "" {
		return fail(c, fmt.Errorf("parameter `id` is missing: %w", ErrInvalid))
	}
	nk, err := newKeyRequest(c)
	if err != nil {
		return fail(c, err)
	}
	k, err := kc.CreateKeyWithID(c.UserContext(), id, nk)
	return a.created(c, k, err)
}

// created answers a create call: 201 with the key, or the error.
func (a *managementAPI) created(c *fiber.Ctx, k ManagedKey, err error) error {
	if err != nil {
		return fail(c, err)
	}
	d, err := a.keyDoc(c.UserContext(), k)
	if err != nil {
		return fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(d)
}

func (a *managementAPI) getKey(c *fiber.Ctx) error {
	k, err := a.m.Key(c.UserContext(), c.Params("id"))
	if err != nil {
		return fail(c, err)
	}
	d, err := a.keyDoc(c.UserContext(), k)
	if err != nil {
		return fail(c, err)
	}
	return c.JSON(d)
}

func (a *managementAPI) deleteKey(c *fiber.Ctx) error {
	return noContent(c, a.m.DeleteKey(c.UserContext(), c.Params("id")))
}

func (a *managementAPI) renameKey(c *fiber.Ctx) error {
	name, err := nameParam(c)
	if err != nil {
		return fail(c, err)
	}
	return noContent(c, a.m.RenameKey(c.UserContext(), c.Params("id"), name))
}

func (a *managementAPI) keyLimit(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodDelete {
		return noContent(c, a.m.SetKeyDataLimit(c.UserContext(), c.Params("id"), nil))
	}
	l, err := fromLimit(c)
	if err != nil {
		return fail(c, err)
	}
	return noContent(c, a.m.SetKeyDataLimit(c.UserContext(), c.Params("id"), l))
}
