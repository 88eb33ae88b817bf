package outline

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/gofiber/fiber/v2"
)

// ErrNotFound is what a DynamicSource or Manager returns for an unknown
// token or key.
var ErrNotFound = errors.New("outline: not found")

// DynamicKey is what an ssconf:// URL resolves to now.
type DynamicKey struct {
	Server string
	Port   int
	Secret Secret
	Prefix string // Outline's salt prefix, raw bytes; "" for none
	// Refusal, when set, is shown to the user by the Outline client instead
	// of connecting: the key expired, is over its data cap, or is suspended.
	Refusal string
}

// DynamicSource resolves a dynamic access key's token; the service layer
// implements it (the token is unguessable and per key).
type DynamicSource interface {
	DynamicKey(ctx context.Context, token string) (DynamicKey, error)
}

// dynamicJSON is Outline's dynamic access key document.
type dynamicJSON struct {
	Server     string `json:"server"`
	ServerPort int    `json:"server_port"`
	Password   string `json:"password"`
	Method     string `json:"method"`
	Prefix     string `json:"prefix,omitempty"`
}

// dynamicError is the document an Outline client shows as an error message.
type dynamicError struct {
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
}

// DynamicKeyHandler serves GET <path>/:token, the HTTPS answer to an
// ssconf:// URL. An unknown token gets a bare 404, so tokens cannot be told
// from any other missing page; a refused key gets its message in Outline's
// error document (200, so that the client reads and shows it); the answer is
// never cached, as the key may rotate or move.
func DynamicKeyHandler(src DynamicSource) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		k, err := src.DynamicKey(c.UserContext(), c.Params("token"))
		if errors.Is(err, ErrNotFound) {
			return c.SendStatus(fiber.StatusNotFound)
		}
		if err != nil {
			return c.SendStatus(fiber.StatusServiceUnavailable)
		}
		if k.Refusal != "" {
			var e dynamicError
			e.Error.Message = k.Refusal
			return c.JSON(e)
		}
		return c.JSON(dynamicJSON{Server: k.Server, ServerPort: k.Port, Password: k.Secret.Password,
			Method: k.Secret.Method, Prefix: PrefixText(k.Prefix)})
	}
}

// DynamicKeyURL is the ssconf:// URL of a dynamic key served at
// https://host:port/path (path starting with "/", token included).
func DynamicKeyURL(host string, port int, path, name string) string {
	u := "ssconf://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	if name != "" {
		u += "#" + urlFragment(name)
	}
	return u
}
