package channel_test

// Encryption at rest: with encryption.activeKey, no byte of an event (body or
// header) is readable in the channel's directories, compressed or not, and
// everything comes back intact after a reopen. Keys rotate: records sealed
// with an older key listed in the keyring stay readable; a record whose key
// is not listed, or is listed with other bytes, stops the channel at open
// with the key's name (its events are intact and must not be skipped as
// damage). The channel passes the conformance suite encrypted.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/channel/channeltest"
	"github.com/flumed/flumed/internal/config"
)

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func keyring(t *testing.T, active string, keys map[string][]byte) *channel.Keyring {
	t.Helper()
	kr, err := channel.NewKeyring(active, keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

const secret = "4111 1111 1111 1111"

// secretEvents carry the secret in a body and a header, alone and inside
// large compressible bodies (so S2 records are covered too).
func secretEvents() []channel.Event {
	return []channel.Event{
		{Body: []byte("card " + secret), Headers: map[string]string{"pan": secret}},
		{Body: bytes.Repeat([]byte("order paid with "+secret+"; "), 1000)},
		{Body: []byte("no secret here")},
	}
}

// putAll puts each event in a transaction of its own: a record each, so
// the small ones are stored uncompressed (where a leak is plain to see).
func putAll(t *testing.T, ch channel.Channel, events []channel.Event) {
	t.Helper()
	for _, e := range events {
		tx := ch.Begin()
		if err := tx.Put(e); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// filesContaining lists the files under dir holding s.
func filesContaining(t *testing.T, dir, s string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameBodiesAndHeaders(t *testing.T, got, want []channel.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Body, want[i].Body) || len(got[i].Headers) != len(want[i].Headers) ||
			got[i].Headers["pan"] != want[i].Headers["pan"] {
			t.Fatalf("event %d differs", i)
		}
	}
}

func TestAnEncryptedChannelLeavesNoSecretOnDisk(t *testing.T) {
	// Teeth first: without keys the secret is in the data directory.
	plain := t.TempDir()
	ch := openFile(t, fileOptions(plain))
	putAll(t, ch, secretEvents())
	ch.Close()
	if len(filesContaining(t, plain, secret)) == 0 {
		t.Fatal("the plain channel does not hold the secret: this test could not see a leak")
	}

	dir := t.TempDir()
	o := fileOptions(dir)
	o.Keys = keyring(t, "k1", map[string][]byte{"k1": randomKey(t)})
	ch = openFile(t, o)
	putAll(t, ch, secretEvents())
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if leaks := filesContaining(t, dir, secret); len(leaks) > 0 {
		t.Fatalf("the secret is readable in %v", leaks)
	}
	ch = openFile(t, o)
	defer ch.Close()
	sameBodiesAndHeaders(t, drainEvents(t, ch), secretEvents())
}

func TestKeysRotateAndAMissingOrWrongKeyIsRefusedAtOpen(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := randomKey(t), randomKey(t)
	o := fileOptions(dir)
	o.Keys = keyring(t, "k1", map[string][]byte{"k1": k1})
	ch := openFile(t, o)
	putAll(t, ch, secretEvents()[:1])
	ch.Close()

	refused := func(kr *channel.Keyring, want string) {
		t.Helper()
		o.Keys = kr
		f, err := channel.OpenFile("c1", o, nil)
		if err == nil {
			f.Close()
			t.Fatalf("opened; want %q", want)
		}
		if !errors.Is(err, channel.ErrRecordKey) || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v; want ErrRecordKey and %q", err, want)
		}
	}
	refused(nil, `encrypted with key "k1" and the channel has no encryption keys`)
	refused(keyring(t, "k2", map[string][]byte{"k2": k2}), `encrypted with key "k1", which encryption.keyProvider.keys does not list (k2)`)
	refused(keyring(t, "k1", map[string][]byte{"k1": k2}), `encrypted with another key named "k1"`)

	// Rotation: k2 seals from now on, k1 still reads what it sealed.
	o.Keys = keyring(t, "k2", map[string][]byte{"k1": k1, "k2": k2})
	ch = openFile(t, o)
	putAll(t, ch, secretEvents()[1:])
	ch.Close()
	// Both keys are needed while k1's record is queued: it is the first.
	refused(keyring(t, "k2", map[string][]byte{"k2": k2}), `key "k1"`)
	o.Keys = keyring(t, "k2", map[string][]byte{"k1": k1, "k2": k2})
	ch = openFile(t, o)
	sameBodiesAndHeaders(t, drainEvents(t, ch), secretEvents())
	ch.Close()
	// Drained, k1 can go.
	o.Keys = keyring(t, "k2", map[string][]byte{"k2": k2})
	ch = openFile(t, o)
	ch.Close()
}

func TestTheEncryptedFileChannelPassesTheConformanceSuite(t *testing.T) {
	kr := keyring(t, "k1", map[string][]byte{"k1": randomKey(t)})
	channeltest.Run(t, channeltest.Factory{
		New: func(t *testing.T, o channeltest.Options) channel.Channel {
			fo := fileOptions(t.TempDir())
			fo.Capacity, fo.TransactionCapacity, fo.KeepAlive = o.Capacity, o.TransactionCapacity, o.KeepAlive
			fo.Keys = kr
			f := openFile(t, fo)
			if o.Clock != nil {
				f.SetClock(o.Clock)
			}
			return f
		},
		Reopen: func(t *testing.T, ch channel.Channel) channel.Channel {
			f := ch.(*channel.File)
			if err := f.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return openFile(t, f.Options())
		},
	})
}

func TestEncryptionKeysAreReadFromFilesAndTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	hexKey := strings.Repeat("ab", 32)
	good := filepath.Join(dir, "k1")
	open := filepath.Join(dir, "open")
	short := filepath.Join(dir, "short")
	for p, v := range map[string]string{good: hexKey + "\n", open: hexKey, short: "abcd"} {
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLUMED_TEST_KEY", "q83vze/Nq83vze/Nq83vze/Nq83vze/Nq83vze/Nq80=") // base64 of 32 bytes
	base := map[string]string{"checkpointDir": filepath.Join(dir, "c"), "dataDirs": filepath.Join(dir, "d")}
	cases := []struct {
		name     string
		keys     map[string]string
		active   string // the keyring's active key, "" for none
		problems []string
		warnings []string
	}{
		{"a key file", map[string]string{"encryption.activeKey": "k1", "encryption.keyProvider": "KEYFILE",
			"encryption.keyProvider.keys": "k1", "encryption.keyProvider.keys.k1.file": good}, "k1", nil, nil},
		{"an environment variable, and Flume's cipher name", map[string]string{"encryption.activeKey": "k2",
			"encryption.cipherProvider": "AESCTRNOPADDING", "encryption.keyProvider": "ENV",
			"encryption.keyProvider.keys": "k2", "encryption.keyProvider.keys.k2.env": "FLUMED_TEST_KEY"}, "k2", nil, nil},
		{"a key file others can read is used, with a warning", map[string]string{"encryption.activeKey": "k1",
			"encryption.keyProvider.keys": "k1", "encryption.keyProvider.keys.k1.file": open}, "k1", nil,
			[]string{"encryption.keyProvider.keys.k1.file: key file " + open + " is readable by others (mode 0644): chmod 600 it"}},
		{"a missing key file says so", map[string]string{"encryption.activeKey": "k1",
			"encryption.keyProvider.keys": "k1", "encryption.keyProvider.keys.k1.file": filepath.Join(dir, "none")}, "",
			[]string{"encryption.keyProvider.keys.k1.file: key file: open " + filepath.Join(dir, "none") + ": no such file or directory"}, nil},
		{"a short key is refused without echoing it", map[string]string{"encryption.activeKey": "k1",
			"encryption.keyProvider.keys": "k1", "encryption.keyProvider.keys.k1.file": short}, "",
			[]string{"encryption.keyProvider.keys.k1.file: key file " + short + ": not a key: want the hex"}, nil},
		{"an unset variable", map[string]string{"encryption.activeKey": "k1", "encryption.keyProvider": "env",
			"encryption.keyProvider.keys": "k1", "encryption.keyProvider.keys.k1.env": "FLUMED_TEST_UNSET"}, "",
			[]string{"encryption.keyProvider.keys.k1.env: environment variable FLUMED_TEST_UNSET is not set"}, nil},
		{"an active key that is not listed", map[string]string{"encryption.activeKey": "k9",
			"encryption.keyProvider.keys": "k1", "encryption.keyProvider.keys.k1.file": good}, "",
			[]string{`encryption.activeKey: key "k9" is not listed in encryption.keyProvider.keys (k1)`}, nil},
		{"a key file of a key that is not listed", map[string]string{"encryption.activeKey": "k1",
			"encryption.keyProvider.keys": "k1", "encryption.keyProvider.keys.k1.file": good,
			"encryption.keyProvider.keys.k3.file": good}, "k1",
			[]string{"encryption.keyProvider.keys.k3.file: key k3 is not listed in encryption.keyProvider.keys (k1)"}, nil},
	}
	f, _ := channel.Lookup("file")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := map[string]string{}
			for k, v := range base {
				keys[k] = v
			}
			for k, v := range tc.keys {
				keys[k] = v
			}
			c := config.FromMap("a1.channels.c1.", keys)
			spec, _ := f("c1", c)
			rel := func(ps []config.Problem) []string {
				var out []string
				for _, p := range ps {
					msg := p.String()
					if strings.Contains(msg, hexKey) {
						t.Fatalf("a key is echoed: %s", msg)
					}
					out = append(out, msg[strings.Index(msg, "a1.channels.c1.")+len("a1.channels.c1."):])
				}
				return out
			}
			probs, warns := rel(c.Problems().Errors()), rel(c.Problems().Warnings())
			check := func(what string, got, want []string) {
				if len(got) != len(want) {
					t.Fatalf("%s %q, want %q", what, got, want)
				}
				for i := range want {
					if !strings.HasPrefix(got[i], want[i]) {
						t.Fatalf("%s %q, want %q", what, got, want)
					}
				}
			}
			check("problems", probs, tc.problems)
			check("warnings", warns, tc.warnings)
			if tc.active == "" || len(tc.problems) > 0 {
				return
			}
			ch, err := spec.Open("c1", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			kr := ch.(*channel.File).Options().Keys
			if kr == nil || kr.Active() != tc.active {
				t.Fatalf("keyring %v, want active %s", kr, tc.active)
			}
		})
	}
}
