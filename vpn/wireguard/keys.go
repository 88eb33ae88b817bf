// This file holds the key material of a peer; clientconf.go renders the
// configuration a user imports.

package wireguard

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// Secret is what the node keeps sealed for a peer: the client's private key
// (the node hands out a complete config) and the preshared key.
type Secret struct {
	Private []byte `json:"private"`
	PSK     []byte `json:"psk"`
}

// NewSecret generates a peer keypair and preshared key; it returns the
// secret and the base64 public key that the server installs.
func NewSecret(r io.Reader) (Secret, string, error) {
	priv, err := ecdh.X25519().GenerateKey(r)
	if err != nil {
		return Secret{}, "", fmt.Errorf("generating wireguard key: %w", err)
	}
	psk := make([]byte, 32)
	if _, err := io.ReadFull(r, psk); err != nil {
		return Secret{}, "", fmt.Errorf("generating preshared key: %w", err)
	}
	return Secret{Private: priv.Bytes(), PSK: psk}, base64.StdEncoding.EncodeToString(priv.PublicKey().Bytes()), nil
}

// PublicKey derives the base64 public key of a base64 or raw private key.
func PublicKey(private []byte) (string, error) {
	k, err := ecdh.X25519().NewPrivateKey(private)
	if err != nil {
		return "", fmt.Errorf("wireguard private key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k.PublicKey().Bytes()), nil
}

// Marshal encodes the secret for sealing.
func (s Secret) Marshal() ([]byte, error) { return json.Marshal(s) }

// ParseSecret decodes an opened secret.
func ParseSecret(b []byte) (Secret, error) {
	var s Secret
	if err := json.Unmarshal(b, &s); err != nil || len(s.Private) != 32 || len(s.PSK) != 32 {
		return Secret{}, fmt.Errorf("wireguard secret is malformed")
	}
	return s, nil
}
