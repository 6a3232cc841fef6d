package channel

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/flumed/flumed/internal/config"
)

// Encryption at rest of the file channel's put records (FILE_FORMAT.md,
// "Encrypted records"). A record's body (after compression: encrypted bytes
// do not compress) is sealed with AES-GCM under the active key; the record's
// fixed header stays readable, so restart, reclaim and `flumed wal inspect`
// work from sequence numbers and counts without any key. Each record names
// its key and carries a 4-byte check of it, so that a record whose key is
// missing or wrong is refused as such (ErrRecordKey) and never mistaken for
// damage, which the channel skips: skipping it would lose its events.

// recordFlagEncrypted marks a record whose body is sealed (file_encryption.go).
const recordFlagEncrypted = 1 << 2

const (
	maxKeyIDLen = 64
	keyCheckLen = 4
	gcmNonceLen = 12
	gcmTagLen   = 16
)

// ErrRecordKey is wrapped by the errors of records that cannot be opened
// because their key is not configured (or is not the key they were sealed
// with). The records are intact: the channel stops rather than skip them.
var ErrRecordKey = errors.New("record key not available")

// Keyring is a file channel's encryption keys: the active one, which seals
// every new record, and older ones still read (rotation: add a new key, make
// it active, keep the old one listed until the records sealed with it are
// consumed). Safe for concurrent use.
type Keyring struct {
	active *recordKey
	keys   map[string]*recordKey
	// Nonces are a random prefix drawn per Keyring (per channel open) and a
	// counter: unique for a key as long as two opens do not draw the same
	// prefix (2^-32 per pair of opens), without the 2^32-records bound of
	// fully random 96-bit nonces.
	prefix  [4]byte
	counter atomic.Uint64
}

type recordKey struct {
	id    string
	check [keyCheckLen]byte
	aead  cipher.AEAD
}

// NewKeyring makes a keyring from raw AES keys (16, 24 or 32 bytes) by
// name; active names the key that seals new records.
func NewKeyring(active string, keys map[string][]byte) (*Keyring, error) {
	kr := &Keyring{keys: map[string]*recordKey{}}
	if _, err := rand.Read(kr.prefix[:]); err != nil {
		return nil, fmt.Errorf("nonce prefix: %w", err)
	}
	for id, raw := range keys {
		if id == "" || len(id) > maxKeyIDLen {
			return nil, fmt.Errorf("key name %q: 1 to %d bytes", id, maxKeyIDLen)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("key %s: %d bytes: an AES key is 16, 24 or 32 bytes", id, len(raw))
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", id, err)
		}
		kr.keys[id] = &recordKey{id: id, check: keyCheck(raw), aead: aead}
	}
	kr.active = kr.keys[active]
	if kr.active == nil {
		return nil, fmt.Errorf("active key %q is not among the keys (%s)", active, strings.Join(kr.Names(), ", "))
	}
	return kr, nil
}

// Active is the name of the key new records are sealed with.
func (kr *Keyring) Active() string { return kr.active.id }

// Names lists the keys, sorted.
func (kr *Keyring) Names() []string {
	out := make([]string, 0, len(kr.keys))
	for id := range kr.keys {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// keyCheck identifies a key without revealing it: 4 bytes of a hash of a
// fixed label and the key.
func keyCheck(raw []byte) [keyCheckLen]byte {
	h := sha256.Sum256(append([]byte("flumed file channel key check\x00"), raw...))
	return [keyCheckLen]byte(h[:keyCheckLen])
}

// ParseKey reads a key as written in a key file or an environment variable:
// hex or standard base64 of 16, 24 or 32 bytes, surrounding blanks ignored.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && validKeyLen(len(b)) {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && validKeyLen(len(b)) {
		return b, nil
	}
	return nil, errors.New("not a key: want the hex (or base64) of 16, 24 or 32 random bytes, e.g. from `openssl rand -hex 32`")
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// sealAAD is what a record's tag authenticates besides its body: the header
// fields known when it is sealed (version, kind, flags, count, body length;
// the sequence number and commit time are stamped later and covered by the
// wal's CRC only) and the key's name and check.
func sealAAD(dst, rec []byte, k *recordKey) []byte {
	dst = append(dst, rec[0:4]...)
	dst = append(dst, rec[12:16]...)
	dst = append(dst, rec[24:28]...)
	dst = append(dst, k.id...)
	return append(dst, k.check[:]...)
}

// seal returns rec (a finished, unstamped record) with its body sealed under
// the active key: header (flag set) | key name length | key name | key check
// | nonce | ciphertext and tag. A nil keyring returns rec as it is.
func (kr *Keyring) seal(rec []byte) []byte {
	if kr == nil {
		return rec
	}
	k := kr.active
	body := rec[recordHeaderSize:]
	meta := 1 + len(k.id) + keyCheckLen + gcmNonceLen
	out := make([]byte, recordHeaderSize, recordHeaderSize+meta+len(body)+gcmTagLen)
	copy(out, rec[:recordHeaderSize])
	out[2] |= recordFlagEncrypted
	out = append(out, byte(len(k.id)))
	out = append(out, k.id...)
	out = append(out, k.check[:]...)
	var nonce [gcmNonceLen]byte
	copy(nonce[:4], kr.prefix[:])
	binary.BigEndian.PutUint64(nonce[4:], kr.counter.Add(1))
	out = append(out, nonce[:]...)
	aad := sealAAD(make([]byte, 0, 12+len(k.id)+keyCheckLen), out, k)
	return k.aead.Seal(out, nonce[:], body, aad)
}

// open returns the plaintext body of a sealed record (still compressed if
// the record says so). A key that is not in the keyring, or whose check
// differs, is ErrRecordKey; a layout or tag that does not hold is damage.
func (kr *Keyring) open(rec []byte) ([]byte, error) {
	body := rec[recordHeaderSize:]
	if len(body) < 1 || body[0] == 0 || int(body[0]) > maxKeyIDLen ||
		len(body) < 1+int(body[0])+keyCheckLen+gcmNonceLen+gcmTagLen {
		return nil, fmt.Errorf("%w: sealed body of %d bytes is too short for its key, nonce and tag", errBadRecord, len(body))
	}
	n := int(body[0])
	id := string(body[1 : 1+n])
	check := [keyCheckLen]byte(body[1+n : 1+n+keyCheckLen])
	nonce := body[1+n+keyCheckLen : 1+n+keyCheckLen+gcmNonceLen]
	sealed := body[1+n+keyCheckLen+gcmNonceLen:]
	if kr == nil {
		return nil, fmt.Errorf("%w: the record is encrypted with key %q and the channel has no encryption keys", ErrRecordKey, id)
	}
	k := kr.keys[id]
	switch {
	case k == nil:
		return nil, fmt.Errorf("%w: the record is encrypted with key %q, which encryption.keyProvider.keys does not list (%s)",
			ErrRecordKey, id, strings.Join(kr.Names(), ", "))
	case k.check != check:
		return nil, fmt.Errorf("%w: the record is encrypted with another key named %q than the one configured", ErrRecordKey, id)
	}
	plain, err := k.aead.Open(nil, nonce, sealed, sealAAD(nil, rec, k))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed body does not authenticate under key %q", errBadRecord, id)
	}
	return plain, nil
}

// checkKeys refuses to open a channel whose queued records it could not
// read: it opens the first queued record and the last record of the log
// (one read each, not a scan) with the configured keys. A key rotated out
// while records sealed with it are queued, a wrong key, or keys removed from
// an encrypted channel are then reported at start, with the key's name,
// instead of at the first take. Records in between are checked when taken.
// The first queued record's commit time is noted on the way (noteHead): it
// is the oldest queued event's put time, which Stats reports, and this read
// is made anyway.
func (f *File) checkKeys() error {
	first, last := f.wal.FirstIndex(), f.wal.LastIndex()
	if last < first {
		return nil
	}
	head := max(f.cursor.pos.Index, first)
	for _, i := range []uint64{head, last} {
		if i > last {
			continue
		}
		rec, err := f.wal.Read(i)
		if err != nil {
			continue // damage: recovery reported it, and takes skip it
		}
		h, err := decodeRecordHeader(rec)
		if err == nil && i == head {
			f.noteHead(i, h.CommitMs)
		}
		if err != nil || h.Flags&recordFlagEncrypted == 0 {
			continue
		}
		if rec, _, err = splitOriginTrailer(rec, h); err != nil {
			continue
		}
		if _, err := f.opts.Keys.open(rec); errors.Is(err, ErrRecordKey) {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return nil
}

// The encryption keys, under Flume's names where Flume has one. Flume's key
// provider is a JCEKS keystore, which no maintained Go library reads:
// JCEKSFILE is refused with the way to make a key flumed reads, a key file
// (KEYFILE) or an environment variable (ENV) per key.
var (
	fileEncActiveKey = config.String("encryption.activeKey", "",
		"the name of the key new records are sealed with; setting it turns encryption on")
	fileEncCipher = config.OneOf("encryption.cipherProvider", "aesgcm", []string{"aesgcm", "aesctrnopadding"},
		"records are always sealed with AES-GCM (authenticated); Flume's AESCTRNOPADDING is accepted and means the same")
	fileEncKeyProvider = config.OneOf("encryption.keyProvider", "keyfile", []string{"keyfile", "env", "jceksfile"},
		"where the keys come from: KEYFILE (`keys.<key>.file`) or ENV (`keys.<key>.env`); Flume's JCEKSFILE is refused with a conversion hint")
	fileEncKeyStoreFile = config.String("encryption.keyProvider.keyStoreFile", "",
		"JCEKSFILE's keystore: refused with the provider")
	fileEncKeyStorePasswordFile = config.String("encryption.keyProvider.keyStorePasswordFile", "",
		"JCEKSFILE's keystore password: refused with the provider")
	fileEncKeys = config.List("encryption.keyProvider.keys", " ", "",
		"the names of every key: the active one and the older ones still needed to read queued records")
	fileEncKeyPasswordFile = config.String("encryption.keyProvider.keys.<key>.passwordFile", "",
		"JCEKSFILE's per-key password: refused with the provider")
	fileEncKeyFile = config.String("encryption.keyProvider.keys.<key>.file", "",
		"KEYFILE: a file holding the key, hex or base64 of 16, 24 or 32 bytes (`openssl rand -hex 32`); readable by flumed only").Flumed()
	fileEncKeyEnv = config.String("encryption.keyProvider.keys.<key>.env", "",
		"ENV: the environment variable holding the key, hex or base64").Flumed()
)

// fileEncryption is the file channel's encryption keys.
var fileEncryption = &config.Group{
	Name: "File channel encryption",
	Doc: "every put record's events are sealed with AES-GCM under the active key; older keys listed stay readable " +
		"(rotation); a missing or wrong key stops the channel at open, naming the key",
	Keys: []config.Decl{fileEncActiveKey, fileEncCipher, fileEncKeyProvider, fileEncKeyStoreFile,
		fileEncKeyStorePasswordFile, fileEncKeys, fileEncKeyPasswordFile, fileEncKeyFile, fileEncKeyEnv},
}

// jceksHint is how to move from Flume's JCEKS keystore. flumed's log is its
// own format, so it needs no key of Flume's: a new key is enough (Flume's
// encrypted backlog is drained with Flume before moving, see flumefile).
const jceksHint = "flumed does not read JCEKS keystores; give each key as a file: " +
	"`openssl rand -hex 32 > /etc/flumed/key-1 && chmod 600 /etc/flumed/key-1`, then " +
	"encryption.keyProvider = KEYFILE and encryption.keyProvider.keys.key-1.file = /etc/flumed/key-1 " +
	"(or ENV and keys.<key>.env = VARIABLE); flumed's log needs no key of Flume's"

const errEncryptionOff = "encryption is off without encryption.activeKey: set it to the key that seals new records, or remove this key"

// readEncryption reads the encryption keys into a keyring, or nil when
// encryption.activeKey is unset (any other encryption key is then an error:
// a security setting is never accepted and ignored). Problems are recorded
// in c; key values are never echoed.
func readEncryption(c *config.Context) *Keyring {
	active, on := fileEncActiveKey.Lookup(c)
	provider := fileEncKeyProvider.Get(c)
	names := fileEncKeys.Get(c)
	if !on {
		for _, k := range []string{fileEncCipher.Name(), fileEncKeyProvider.Name(), fileEncKeyStoreFile.Name(),
			fileEncKeyStorePasswordFile.Name(), fileEncKeys.Name()} {
			if _, set := c.Take(k); set {
				c.Errorf(k, "%s", errEncryptionOff)
				return nil
			}
		}
		for _, fam := range []config.Key[string]{fileEncKeyFile, fileEncKeyEnv, fileEncKeyPasswordFile} {
			if in := fam.Instances(c); len(in) > 0 {
				c.Errorf(in[0].Key, "%s", errEncryptionOff)
				return nil
			}
		}
		return nil
	}
	if provider == "jceksfile" {
		c.Errorf(fileEncKeyProvider.Name(), "%s", jceksHint)
		return nil
	}
	for _, k := range []config.Key[string]{fileEncKeyStoreFile, fileEncKeyStorePasswordFile} {
		if _, set := k.Lookup(c); set {
			c.Errorf(k.Name(), "only used by keyProvider JCEKSFILE, which flumed does not read; %s", jceksHint)
		}
	}
	for _, in := range fileEncKeyPasswordFile.Instances(c) {
		c.Errorf(in.Key, "only used by keyProvider JCEKSFILE, which flumed does not read; %s", jceksHint)
	}
	if len(names) == 0 {
		c.Errorf(fileEncKeys.Name(), "required with encryption.activeKey: the names of the keys (the active one first)")
		return nil
	}
	listed := func(name string) bool { return slices.Contains(names, name) }
	for _, fam := range []config.Key[string]{fileEncKeyFile, fileEncKeyEnv} {
		for _, in := range fam.Instances(c) {
			if !listed(in.Names[0]) {
				c.Errorf(in.Key, "key %s is not listed in %s (%s)", in.Names[0], fileEncKeys.Name(), strings.Join(names, " "))
			}
		}
	}
	if !listed(active) {
		c.Errorf(fileEncActiveKey.Name(), "key %q is not listed in %s (%s)", active, fileEncKeys.Name(), strings.Join(names, " "))
		return nil
	}
	keys := map[string][]byte{}
	ok := true
	for _, name := range names {
		raw, err := loadKey(c, provider, name)
		if err != nil {
			ok = false
			continue
		}
		keys[name] = raw
	}
	if !ok {
		return nil
	}
	kr, err := NewKeyring(active, keys)
	if err != nil {
		c.Errorf(fileEncKeys.Name(), "%v", err)
		return nil
	}
	return kr
}

// loadKey reads one key from its file or environment variable, recording
// the problem in c.
func loadKey(c *config.Context, provider, name string) ([]byte, error) {
	var (
		fam = fileEncKeyFile
		src string
		raw string
	)
	if provider == "env" {
		fam = fileEncKeyEnv
	}
	key, _ := fam.At(c, name)
	rel := "encryption.keyProvider.keys." + name + ".file"
	if provider == "env" {
		rel = "encryption.keyProvider.keys." + name + ".env"
	}
	if key == "" {
		err := fmt.Errorf("required for key %s with keyProvider %s", name, strings.ToUpper(provider))
		c.Errorf(rel, "%v", err)
		return nil, err
	}
	if provider == "env" {
		v, set := os.LookupEnv(key)
		if !set || v == "" {
			err := fmt.Errorf("environment variable %s is not set", key)
			c.Errorf(rel, "%v", err)
			return nil, err
		}
		src, raw = "environment variable "+key, v
	} else {
		b, err := os.ReadFile(key)
		if err != nil {
			c.Errorf(rel, "key file: %v", err)
			return nil, err
		}
		if fi, err := os.Stat(key); err == nil && fi.Mode().Perm()&0o077 != 0 {
			c.Warnf(rel, "key file %s is readable by others (mode %#o): chmod 600 it", key, fi.Mode().Perm())
		}
		src, raw = "key file "+key, string(b)
	}
	k, err := ParseKey(raw)
	if err != nil {
		c.Errorf(rel, "%s: %v", src, err)
		return nil, err
	}
	return k, nil
}
