package outline

import (
	"context"

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

func (a *managementAPI) createKey(c *fiber.Ctx) error {
	var req struct {
		Name     string     `json:"name"`
		Method   string     `json:"method"`
		Password string     `json:"password"`
		Port     int        `json:"port"`
		Limit    *limitJSON `json:"limit"`
	}
	if len(c.Body()) > 0 { // Outline Manager posts no body at all
		if err := body(c, &req); err != nil {
			return fail(c, err)
		}
	}
	if req.Method != "" {
		if _, ok := methods[req.Method]; !ok {
			return fail(c, ErrInvalid)
		}
	}
	if req.Port < 0 || req.Port > 65535 {
		return fail(c, ErrInvalid)
	}
	nk := NewManagedKey{Name: req.Name, Method: req.Method, Password: req.Password, Port: req.Port}
	if req.Limit != nil {
		if req.Limit.Bytes == nil || *req.Limit.Bytes < 0 {
			return fail(c, ErrInvalid)
		}
		n := uint64(*req.Limit.Bytes)
		nk.DataLimit = &n
	}
	k, err := a.m.CreateKey(c.UserContext(), nk)
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
	var req struct {
		Name *string `json:"name"`
	}
	if err := body(c, &req); err != nil || req.Name == nil {
		return fail(c, ErrInvalid)
	}
	return noContent(c, a.m.RenameKey(c.UserContext(), c.Params("id"), *req.Name))
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
