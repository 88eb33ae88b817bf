package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/usipipo/usipipo/app/backup"
	"github.com/usipipo/usipipo/store"
	"github.com/usipipo/usipipo/store/keyring"
	"github.com/usipipo/usipipo/vpn/wireguard"
)

// Labels and ids that bind the node's own secrets to their purpose.
const (
	dataKeyLabel = backup.DataKeyLabel
	metaRecord   = "meta"
	passKeyID    = "backup-passkey"
	wgServerID   = "wg-server-key"
)

var metaWGServer = []byte("wg_server_key_sealed")

// secrets are the node's keys, opened at start.
type secrets struct {
	nodeKey  keyring.Key
	dataKey  keyring.Key
	passKey  keyring.PassKey
	hasPass  bool
	wgPublic string
	wgPriv   []byte
}

// Paths of the data dir (DESIGN.md "Data dir layout").
func dbPath(data string) string      { return filepath.Join(data, "usipipo.db") }
func socketPath(data string) string  { return filepath.Join(data, "admin.sock") }
func backupsPath(data string) string { return filepath.Join(data, "backups") }
func stagedPath(data string) string  { return filepath.Join(data, "usipipo.db.restore") }

// credDir is systemd's credentials directory, where LoadCredential= puts
// node.key.
func credDir() string { return os.Getenv("CREDENTIALS_DIRECTORY") }

// openSecrets unwraps the data key from the store with the node key and
// opens the node's sealed secrets, creating what a new store lacks.
func openSecrets(st *store.Store, nodeKey keyring.Key, r io.Reader) (*secrets, error) {
	s := &secrets{nodeKey: nodeKey}
	wrapped, err := st.GetMeta(store.MetaDataKey)
	if err != nil {
		return nil, err
	}
	if wrapped == nil {
		if s.dataKey, err = keyring.GenerateKey(r); err != nil {
			return nil, err
		}
		if wrapped, err = keyring.Wrap(nodeKey, s.dataKey, dataKeyLabel, r); err != nil {
			return nil, err
		}
		if err := st.PutMeta(map[string][]byte{string(store.MetaDataKey): wrapped}); err != nil {
			return nil, err
		}
	} else if s.dataKey, err = keyring.Unwrap(nodeKey, wrapped, dataKeyLabel); err != nil {
		return nil, fmt.Errorf("the node key does not open this database's data key (wrong node.key for this data dir?): %w", err)
	}
	if err := s.openWG(st, r); err != nil {
		return nil, err
	}
	sealedPK, err := st.GetMeta(store.MetaPassKey)
	if err != nil || sealedPK == nil {
		return s, err
	}
	b, err := keyring.Open(s.dataKey, metaRecord, passKeyID, sealedPK)
	if err != nil {
		return nil, fmt.Errorf("opening backup key: %w", err)
	}
	if s.passKey, err = keyring.UnmarshalPassKey(b); err != nil {
		return nil, err
	}
	s.hasPass = true
	return s, nil
}

func (s *secrets) openWG(st *store.Store, r io.Reader) error {
	sealed, err := st.GetMeta(metaWGServer)
	if err != nil {
		return err
	}
	if sealed == nil {
		sec, _, err := wireguard.NewSecret(r)
		if err != nil {
			return err
		}
		if sealed, err = keyring.Seal(s.dataKey, r, metaRecord, wgServerID, sec.Private); err != nil {
			return err
		}
		if err := st.PutMeta(map[string][]byte{string(metaWGServer): sealed}); err != nil {
			return err
		}
	}
	priv, err := keyring.Open(s.dataKey, metaRecord, wgServerID, sealed)
	if err != nil {
		return fmt.Errorf("opening wireguard server key: %w", err)
	}
	s.wgPriv = priv
	s.wgPublic, err = wireguard.PublicKey(priv)
	return err
}

// setPassKey derives and stores the key scheduled backups are encrypted to.
func (s *secrets) setPassKey(st *store.Store, passphrase []byte, r io.Reader) error {
	pk, err := keyring.NewPassKey(passphrase, r)
	if err != nil {
		return err
	}
	b, err := pk.MarshalBinary()
	if err != nil {
		return err
	}
	sealed, err := keyring.Seal(s.dataKey, r, metaRecord, passKeyID, b)
	if err != nil {
		return err
	}
	if err := st.PutMeta(map[string][]byte{string(store.MetaPassKey): sealed}); err != nil {
		return err
	}
	s.passKey, s.hasPass = pk, true
	return nil
}

// initialised reports whether the data dir holds a node.
func initialised(data string) (bool, error) {
	_, err := os.Stat(dbPath(data))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// DataKey opens the data key of a data dir's store with its node key, for
// offline tools (backup without a running node).
func DataKey(data string, st *store.Store) (keyring.Key, error) {
	nodeKey, _, err := keyring.LoadNodeKey(data, credDir(), false, nil)
	if err != nil {
		return keyring.Key{}, err
	}
	wrapped, err := st.GetMeta(store.MetaDataKey)
	if err != nil {
		return keyring.Key{}, err
	}
	if wrapped == nil {
		return keyring.Key{}, fmt.Errorf("%s holds no data key: not an initialised node", data)
	}
	return keyring.Unwrap(nodeKey, wrapped, dataKeyLabel)
}
