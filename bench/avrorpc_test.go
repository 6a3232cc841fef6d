package bench

// Flume's Avro RPC, flumed to flumed over loopback.
//
// BenchmarkAvroRPC: flumed's avro sink (one connection, one appendBatch of
// 100 events per Process, as Flume's sink) sends 512-byte events to flumed's
// avro source, which puts them through the channel processor into a memory
// channel that a goroutine drains. The sink's channel hands out the same
// prepared batch forever, so the sending side costs only the sink itself.
// One iteration is one event; besides events/s it reports CPU (user+system of
// the whole process) per event. The baseline in the same run is the memory
// channel alone (put+take of the same batches, no network).
//
// BenchmarkAvroCodec: encoding and decoding appendBatch's parameter, 100
// events of 512 bytes with two headers, with the hand codec flumed uses and
// with github.com/hamba/avro/v2 for comparison, in ns per event.
//
//	go test -run '^$' -bench 'BenchmarkAvro' -benchmem ./bench/
//
// The Test functions here run the same sink and source, built from
// properties through the registries, with deflate, TLS and mutual TLS.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/avrorpc"
	"github.com/flumed/flumed/internal/await"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/sink"
	"github.com/flumed/flumed/source"
)

const (
	rpcBatch = 100
	rpcBody  = 512
)

// rpcEvents makes n events of size body bytes with two typical headers.
func rpcEvents(n, size int) []channel.Event {
	out := make([]channel.Event, n)
	for i := range out {
		out[i] = channel.Event{
			Headers: map[string]string{"timestamp": "1700000000000", "host": "agent-17.example.com"},
			Body:    []byte(strings.Repeat("x", size-8) + fmt.Sprintf("%08d", i)),
		}
	}
	return out
}

// genChannel gives out the same batch on every Take and counts committed takes.
type genChannel struct {
	batch []channel.Event
	taken atomic.Int64
}

func (g *genChannel) Name() string         { return "gen" }
func (g *genChannel) Begin() channel.Txn   { return &genTxn{g: g} }
func (g *genChannel) Stats() channel.Stats { return channel.Stats{} }
func (g *genChannel) Close() error         { return nil }

type genTxn struct {
	g *genChannel
	n int
}

func (t *genTxn) Put(...channel.Event) error { return channel.ErrMixed }
func (t *genTxn) Take(max int) ([]channel.Event, error) {
	t.n = min(max, len(t.g.batch))
	return t.g.batch[:t.n], nil
}
func (t *genTxn) Commit() error   { t.g.taken.Add(int64(t.n)); return nil }
func (t *genTxn) Rollback() error { return nil }

var quiet = slog.New(slog.DiscardHandler)

// rpcPair is an avro source into a drained memory channel and an avro sink
// pointed at it, both built from properties through the registries.
type rpcPair struct {
	src     source.Source
	snk     sink.Sink
	mem     *channel.Memory
	drained atomic.Int64
	stop    func()
}

func newRPCPair(tb testing.TB, srcKeys, sinkKeys map[string]string, sinkCh channel.Channel) *rpcPair {
	tb.Helper()
	p := &rpcPair{mem: channel.NewMemory("c1", channel.MemoryOptions{Capacity: 100_000, TransactionCapacity: 1000})}
	proc, err := source.NewChannelProcessor(config.FromMap("a1.sources.r1.", nil), []channel.Channel{p.mem}, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	sk := map[string]string{"bind": "127.0.0.1", "port": "0"}
	for k, v := range srcKeys {
		sk[k] = v
	}
	srcFactory, _ := source.Lookup("avro")
	c := config.FromMap("a1.sources.r1.", sk)
	if p.src, err = srcFactory("r1", c, quiet); err != nil || c.Problems().Err() != nil {
		tb.Fatalf("source: %v %v", err, c.Problems().Err())
	}
	if err := p.src.Start(context.Background(), proc); err != nil {
		tb.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(p.src.(interface{ Addr() net.Addr }).Addr().String())
	kk := map[string]string{"hostname": host, "port": port, "batch-size": fmt.Sprint(rpcBatch)}
	for k, v := range sinkKeys {
		kk[k] = v
	}
	sinkFactory, _ := sink.Lookup("avro")
	c = config.FromMap("a1.sinks.k1.", kk)
	if p.snk, err = sinkFactory("k1", c, quiet); err != nil || c.Problems().Err() != nil {
		tb.Fatalf("sink: %v %v", err, c.Problems().Err())
	}
	if err := p.snk.Start(context.Background(), sinkCh); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the collector's own sink: keep the memory channel from filling
		defer wg.Done()
		for ctx.Err() == nil {
			tx := p.mem.Begin()
			evs, err := tx.Take(1000)
			if err != nil {
				tx.Rollback()
				return
			}
			tx.Commit()
			p.drained.Add(int64(len(evs)))
			if len(evs) == 0 {
				time.Sleep(100 * time.Microsecond) // pacing: an empty take backs off, as a sink runner does
			}
		}
	}()
	p.stop = func() {
		p.snk.Stop()
		p.src.Stop()
		cancel()
		wg.Wait()
		p.mem.Close()
	}
	return p
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkAvroRPC(b *testing.B) {
	b.Run(fmt.Sprintf("path=memory-channel-only/batch=%d/size=%d", rpcBatch, rpcBody), func(b *testing.B) {
		mem := channel.NewMemory("c1", channel.MemoryOptions{Capacity: 10 * rpcBatch, TransactionCapacity: rpcBatch})
		defer mem.Close()
		evs := rpcEvents(rpcBatch, rpcBody)
		b.SetBytes(rpcBody)
		start, cpu0 := time.Now(), cpuTime()
		for i := 0; i < b.N; i += rpcBatch {
			tx := mem.Begin()
			tx.Put(evs...)
			tx.Commit()
			tx = mem.Begin()
			tx.Take(rpcBatch)
			tx.Commit()
		}
		report(b, b.N, time.Since(start), cpuTime()-cpu0)
	})
	for _, comp := range []string{"none", "deflate"} {
		b.Run(fmt.Sprintf("path=sink-to-source/compression=%s/batch=%d/size=%d", comp, rpcBatch, rpcBody), func(b *testing.B) {
			gen := &genChannel{batch: rpcEvents(rpcBatch, rpcBody)}
			keys := map[string]string{"compression-type": comp}
			p := newRPCPair(b, keys, keys, gen)
			defer p.stop()
			b.SetBytes(rpcBody)
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for gen.taken.Load() < int64(b.N) {
				if _, err := p.snk.Process(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			elapsed, cpu := time.Since(start), cpuTime()-cpu0
			b.StopTimer()
			report(b, int(gen.taken.Load()), elapsed, cpu)
		})
	}
}

func report(b *testing.B, events int, elapsed, cpu time.Duration) {
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(events), "cpu-ns/event")
}

// hambaEvent is AvroFlumeEvent for hamba/avro.
type hambaEvent struct {
	Headers map[string]string `avro:"headers"`
	Body    []byte            `avro:"body"`
}

var hambaSchema = avro.MustParse(`{"type":"array","items":{"type":"record","name":"AvroFlumeEvent",
	"namespace":"org.apache.flume.source.avro","fields":[{"name":"headers","type":{"type":"map","values":"string"}},
	{"name":"body","type":"bytes"}]}}`)

func wireEvents(evs []channel.Event) []avrorpc.Event {
	out := make([]avrorpc.Event, len(evs))
	for i, e := range evs {
		out[i] = avrorpc.Event(e)
	}
	return out
}

func BenchmarkAvroCodec(b *testing.B) {
	evs := wireEvents(rpcEvents(rpcBatch, rpcBody))
	hevs := make([]hambaEvent, len(evs))
	for i, e := range evs {
		hevs[i] = hambaEvent(e)
	}
	encoded := avrorpc.AppendEvents(nil, evs)
	perEvent := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rpcBatch), "ns/event")
	}
	name := func(codec, op string) string {
		return fmt.Sprintf("codec=%s/op=%s/batch=%d/size=%d", codec, op, rpcBatch, rpcBody)
	}
	b.Run(name("hand", "encode"), func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = avrorpc.AppendEvents(buf[:0], evs)
		}
		perEvent(b)
	})
	b.Run(name("hamba", "encode"), func(b *testing.B) {
		for b.Loop() {
			if _, err := avro.Marshal(hambaSchema, hevs); err != nil {
				b.Fatal(err)
			}
		}
		perEvent(b)
	})
	b.Run(name("hand", "decode"), func(b *testing.B) {
		for b.Loop() {
			if _, err := avrorpc.DecodeEvents(encoded, avrorpc.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		perEvent(b)
	})
	b.Run(name("hamba", "decode"), func(b *testing.B) {
		for b.Loop() {
			var out []hambaEvent
			if err := avro.Unmarshal(hambaSchema, encoded, &out); err != nil {
				b.Fatal(err)
			}
		}
		perEvent(b)
	})
}

func TestHandCodecAndHambaReadEachOthersBytes(t *testing.T) {
	// hamba writes blocks with negative counts and byte sizes, Java and the
	// hand codec plain counts: both are valid Avro, and each side reads the
	// other's.
	evs := wireEvents(rpcEvents(3, 64))
	hevs := make([]hambaEvent, len(evs))
	for i, e := range evs {
		hevs[i] = hambaEvent(e)
	}
	fromHamba, err := avro.Marshal(hambaSchema, hevs)
	if err != nil {
		t.Fatal(err)
	}
	back, err := avrorpc.DecodeEvents(fromHamba, avrorpc.Limits{})
	if err != nil || fmt.Sprint(back) != fmt.Sprint(evs) {
		t.Fatalf("hand codec reading hamba's bytes: %v\n got %v\nwant %v", err, back, evs)
	}
	var out []hambaEvent
	if err := avro.Unmarshal(hambaSchema, avrorpc.AppendEvents(nil, evs), &out); err != nil || fmt.Sprint(out) != fmt.Sprint(hevs) {
		t.Fatalf("hamba reading the hand codec's bytes: %v\n got %v\nwant %v", err, out, hevs)
	}
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
func tlsFiles(t *testing.T) (ca, srvCert, srvKey, cliCert, cliKey string) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(name string, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		return write(name+".pem", "CERTIFICATE", der), write(name+".key", "PRIVATE KEY", kder)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	srvCert, srvKey = issue("server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey = issue("client", x509.ExtKeyUsageClientAuth)
	return
}

// memChannelWith returns a memory channel holding n events e0..e(n-1).
func memChannelWith(t *testing.T, n int) *channel.Memory {
	ch := channel.NewMemory("k1-channel", channel.MemoryOptions{Capacity: n, TransactionCapacity: n})
	evs := make([]channel.Event, n)
	for i := range evs {
		evs[i] = channel.Event{Headers: map[string]string{"seq": fmt.Sprint(i)}, Body: []byte(fmt.Sprintf("e%d", i))}
	}
	tx := ch.Begin()
	tx.Put(evs...)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestAvroSinkToAvroSourceRoundTrips(t *testing.T) {
	ca, srvCert, srvKey, cliCert, cliKey := tlsFiles(t)
	serverTLS := map[string]string{"ssl": "true", "ssl-cert": srvCert, "ssl-key": srvKey}
	clientTLS := map[string]string{"ssl": "true", "ssl-ca": ca}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	deflate := map[string]string{"compression-type": "deflate"}
	cases := map[string]struct{ src, snk map[string]string }{
		"plain":         {nil, nil},
		"deflate":       {deflate, deflate},
		"tls":           {serverTLS, clientTLS},
		"tls+deflate":   {merge(serverTLS, deflate), merge(clientTLS, deflate)},
		"mutual tls":    {merge(serverTLS, map[string]string{"ssl-client-auth": "required", "ssl-ca": ca}), merge(clientTLS, map[string]string{"ssl-cert": cliCert, "ssl-key": cliKey})},
		"include proto": {merge(serverTLS, map[string]string{"include-protocols": "TLSv1.2 TLSv1.3"}), merge(clientTLS, map[string]string{"exclude-protocols": "SSLv3 TLSv1.3"})},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ch := memChannelWith(t, 250)
			defer ch.Close()
			p := newRPCPair(t, tc.src, tc.snk, ch)
			defer p.stop()
			for ch.Stats().Size > 0 {
				if _, err := p.snk.Process(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			await.True(t, "the collector to receive 250 events", func() bool { return p.drained.Load() >= 250 })
			if got := p.drained.Load(); got != 250 {
				t.Fatalf("collector received %d of 250 events", got)
			}
		})
	}
}
