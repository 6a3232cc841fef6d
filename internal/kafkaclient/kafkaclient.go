// Package kafkaclient declares the Java Kafka client properties flumed's
// Kafka components accept under kafka.producer.* and kafka.consumer.*
// (Flume passes them to Kafka's Java client as written), and maps them to
// franz-go options: acks, linger, batch sizes, compression, timeouts, TLS
// and SASL (PLAIN, SCRAM).
//
// Every property it maps is a declared key, so an unknown one is a config
// error with a "did you mean", never silently dropped. It must never enable
// something that weakens the durability rule without saying so: acks=0 and
// enable.auto.commit=true are refused.
package kafkaclient

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/tlsconfig"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// security are the connection keys a producer and a consumer both have,
// under their own prefix (Flume configures the two clients separately).
type security struct {
	protocol, mechanism, jaas            config.Key[string]
	truststore, truststorePass, trustTyp config.Key[string]
	keystore, keystorePass, keyTyp       config.Key[string]
	endpointID                           config.Key[string]
	protocols, ciphers                   config.Key[[]string]
	clientID                             config.Key[string]
}

func newSecurity(p string) security {
	return security{
		protocol: config.OneOf(p+"security.protocol", "PLAINTEXT",
			[]string{"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"}, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
		mechanism: config.OneOf(p+"sasl.mechanism", "PLAIN",
			[]string{"plain", "scram-sha-256", "scram-sha-512"}, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (GSSAPI is not supported)"),
		jaas: config.String(p+"sasl.jaas.config", "",
			`the login module line; flumed reads username="..." and password="..." from it`),
		truststore:     config.String(p+"ssl.truststore.location", "", "a PKCS12 or PEM file of CAs to trust; the system's CAs when unset"),
		truststorePass: config.String(p+"ssl.truststore.password", "", "the truststore's password"),
		trustTyp:       config.String(p+"ssl.truststore.type", "", "PKCS12 or PEM (JKS is refused with the keytool command that converts it)"),
		keystore:       config.String(p+"ssl.keystore.location", "", "a PKCS12 or PEM file with the client's certificate and key (mutual TLS)"),
		keystorePass:   config.String(p+"ssl.keystore.password", "", "the keystore's password"),
		keyTyp:         config.String(p+"ssl.keystore.type", "", "PKCS12 or PEM"),
		endpointID: config.String(p+"ssl.endpoint.identification.algorithm", "https",
			"https checks that the broker's certificate names the host; empty checks the chain only"),
		protocols: config.List(p+"ssl.enabled.protocols", " ,", "", "the TLS protocols to enable; TLSv1.2 and TLSv1.3 when unset"),
		ciphers:   config.List(p+"ssl.cipher.suites", " ,", "", "the TLS 1.2 cipher suites to enable (IANA names)"),
		clientID:  config.String(p+"client.id", "", "the client id the brokers see"),
	}
}

func (s security) decls() []config.Decl {
	return []config.Decl{s.protocol, s.mechanism, s.jaas, s.truststore, s.truststorePass, s.trustTyp,
		s.keystore, s.keystorePass, s.keyTyp, s.endpointID, s.protocols, s.ciphers, s.clientID}
}

// The producer's keys.
var (
	prodSec      = newSecurity("kafka.producer.")
	acks         = config.OneOf("kafka.producer.acks", "all", []string{"all", "-1", "1", "0"}, "all waits for every in-sync replica (flumed's default; Flume's is 1); 1 for the leader only, which turns the idempotent producer off; 0 is refused")
	linger       = config.Millis("kafka.producer.linger.ms", 0, "how long a partition's batch waits for more records")
	batchBytes   = config.Bytes("kafka.producer.batch.size", 1<<20, "the most bytes of one partition's batch").DefaultText("1048576 (franz-go's; Java's is 16384)")
	requestBytes = config.Bytes("kafka.producer.max.request.size", 100<<20, "the most bytes of one request to a broker")
	compression  = config.OneOf("kafka.producer.compression.type", "none", []string{"none", "gzip", "snappy", "lz4", "zstd"}, "how batches are compressed")
	prodTimeout  = config.Millis("kafka.producer.request.timeout.ms", 30*time.Second, "how long a broker may take to answer a produce request")
	delivery     = config.Millis("kafka.producer.delivery.timeout.ms", 120*time.Second, "how long a record may wait to be acknowledged, retries included, before its batch fails and rolls back")
	inflight     = config.Int("kafka.producer.max.in.flight.requests.per.connection", 5, "produce requests in flight per broker with acks=1; the idempotent producer keeps 5, in order")
)

// Producer is the kafka.producer.* keys flumed maps.
var Producer = &config.Group{
	Name: "Kafka producer",
	Doc:  "Java producer properties under kafka.producer.; any other is an error",
	Keys: append([]config.Decl{acks, linger, batchBytes, requestBytes, compression, prodTimeout, delivery, inflight}, prodSec.decls()...),
}

// The consumer's keys.
var (
	consSec     = newSecurity("kafka.consumer.")
	groupID     = config.String("kafka.consumer.group.id", "flume", "the consumer group")
	reset       = config.OneOf("kafka.consumer.auto.offset.reset", "", []string{"earliest", "latest", "none"}, "where a group without a committed offset starts").DefaultText("latest for the source, earliest for the channel")
	session     = config.Millis("kafka.consumer.session.timeout.ms", 45*time.Second, "how long the group waits for a silent member")
	heartbeat   = config.Millis("kafka.consumer.heartbeat.interval.ms", 3*time.Second, "how often a member tells the group it is alive")
	maxPoll     = config.Millis("kafka.consumer.max.poll.interval.ms", 300*time.Second, "the group's rebalance timeout: how long a rebalance waits for every member to rejoin")
	instanceID  = config.String("kafka.consumer.group.instance.id", "", "a static member id: a restarted agent with the same id takes its partitions back at once")
	pollRecords = config.Int("kafka.consumer.max.poll.records", 500, "the most records one poll returns")
	isolation   = config.OneOf("kafka.consumer.isolation.level", "read_uncommitted", []string{"read_uncommitted", "read_committed"}, "read_committed skips aborted transactions")
	autoCommit  = config.Bool("kafka.consumer.enable.auto.commit", false, "must be false: offsets are committed only after the channel commits")
	fetchBytes  = config.Bytes("kafka.consumer.fetch.max.bytes", defaultFetchBytes, "the most bytes one fetch from a broker returns").
			DefaultText("1048576 (1 MiB; Java's is 50 MiB)")
	fetchWait = config.Millis("kafka.consumer.fetch.max.wait.ms", 500*time.Millisecond, "how long a broker holds a fetch waiting for data")
)

// defaultFetchBytes bounds what the consumer holds: franz-go keeps one
// fetch answered and one under way per broker, and a backlog fills every
// answer to its bound. With Java's 50 MiB a source reading a backlog from
// three brokers held fetches of several MiB each, and its agent's peak RSS
// was 62 MiB against 55 MiB with 1 MiB, at the same events/s
// (bench/kafka_source_test.go, sink=none, 300,000 events). A broker still
// returns a whole first batch that is larger, so 1 MiB never stalls a
// partition.
const defaultFetchBytes = 1 << 20

// Consumer is the kafka.consumer.* keys flumed maps.
var Consumer = &config.Group{
	Name: "Kafka consumer",
	Doc:  "Java consumer properties under kafka.consumer.; any other is an error",
	Keys: append([]config.Decl{groupID, reset, session, heartbeat, maxPoll, instanceID, pollRecords, isolation, autoCommit, fetchBytes, fetchWait}, consSec.decls()...),
}

// ProducerOptions reads the Producer keys of c. ok is false when a problem
// was recorded in c. The options include the idempotent producer unless
// acks is 1 (franz-go requires all acks for it).
func ProducerOptions(c *config.Context) (opts []kgo.Opt, ok bool) {
	ok = true
	switch acks.Get(c) {
	case "0":
		c.Errorf(acks.Name(), "0 is refused: the sink would commit events no broker acknowledged; use all (or 1)")
		ok = false
	case "1":
		c.Warnf(acks.Name(), "1 acknowledges once the leader has the records: a leader lost before its followers copy them loses events the channel no longer has; the idempotent producer is off")
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	default:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	}
	// Always set: franz-go's own default lingers 10 ms, which a sink
	// waiting for each batch's acknowledgement pays on every batch.
	opts = append(opts, kgo.ProducerLinger(linger.Get(c)))
	bb, rb := batchBytes.Get(c), requestBytes.Get(c)
	if bb < 1 || bb > rb || rb > 1<<30 {
		c.Errorf(batchBytes.Name(), "must be 1 to max.request.size (%d), at most 1 GiB", rb)
		ok = false
	} else {
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(bb)), kgo.BrokerMaxWriteBytes(int32(rb)))
	}
	switch compression.Get(c) {
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	for _, k := range []config.Key[time.Duration]{prodTimeout, delivery} {
		if k.Get(c) < time.Second {
			c.Errorf(k.Name(), "must be at least 1000 ms")
			ok = false
		}
	}
	opts = append(opts, kgo.ProduceRequestTimeout(prodTimeout.Get(c)), kgo.RecordDeliveryTimeout(delivery.Get(c)))
	if n, set := inflight.Lookup(c); set {
		switch {
		case n < 1 || n > 5:
			c.Errorf(inflight.Name(), "must be 1-5, not %d", n)
			ok = false
		case acks.Get(c) == "1":
			opts = append(opts, kgo.MaxProduceRequestsInflightPerBroker(n))
		default:
			c.Warnf(inflight.Name(), "the idempotent producer keeps its own bound (5, in order); ignored")
		}
	}
	sec, secOK := prodSec.options(c)
	return append(opts, sec...), ok && secOK
}

// DeliveryTimeout is kafka.producer.delivery.timeout.ms: how long a
// producer's Stop may wait for the answers of what it sent.
func DeliveryTimeout(c *config.Context) time.Duration { return delivery.Get(c) }

// ConsumerConfig is what the consumer keys say beyond client options.
type ConsumerConfig struct {
	Group       string
	PollRecords int
}

// ConsumerOptions reads the Consumer keys of c: options for a group
// consumer that never commits by itself.
func ConsumerOptions(c *config.Context) (opts []kgo.Opt, cc ConsumerConfig, ok bool) {
	ok = true
	cc = ConsumerConfig{Group: groupID.Get(c), PollRecords: pollRecords.Get(c)}
	if autoCommit.Get(c) {
		c.Errorf(autoCommit.Name(), "true is refused: offsets are committed only after the channel transaction commits")
		ok = false
	}
	if cc.Group == "" {
		c.Errorf(groupID.Name(), "must not be empty")
		ok = false
	}
	if cc.PollRecords < 1 {
		c.Errorf(pollRecords.Name(), "must be at least 1")
		ok = false
	}
	opts = append(opts, kgo.ConsumerGroup(cc.Group), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(session.Get(c)), kgo.HeartbeatInterval(heartbeat.Get(c)), kgo.RebalanceTimeout(maxPoll.Get(c)),
		kgo.FetchMaxWait(fetchWait.Get(c)))
	if id := instanceID.Get(c); id != "" {
		opts = append(opts, kgo.InstanceID(id))
	}
	if fb := fetchBytes.Get(c); fb < 1 || fb > 1<<30 {
		c.Errorf(fetchBytes.Name(), "must be 1 byte to 1 GiB")
		ok = false
	} else {
		opts = append(opts, kgo.FetchMaxBytes(int32(fb)))
	}
	// Only when set: where a group starts by default is the component's
	// (Java's latest for the source; earliest for the channel, whose events
	// put before its consumer joined must not be skipped).
	switch r, _ := reset.Lookup(c); r {
	case "":
	case "earliest":
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	case "none":
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	case "latest":
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	}
	if isolation.Get(c) == "read_committed" {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	sec, secOK := consSec.options(c)
	return append(opts, sec...), cc, ok && secOK
}

// jaasField finds key="value" in a JAAS login line.
var jaasField = regexp.MustCompile(`(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"`)

// options maps the security keys: TLS for SSL and SASL_SSL, SASL for the
// SASL protocols.
func (s security) options(c *config.Context) (opts []kgo.Opt, ok bool) {
	ok = true
	if id := s.clientID.Get(c); id != "" {
		opts = append(opts, kgo.ClientID(id))
	}
	proto := s.protocol.Get(c)
	if proto == "ssl" || proto == "sasl_ssl" {
		cfg, problems := tlsconfig.ClientTLSConfig(tlsconfig.TLSOptions{
			Truststore: s.truststore.Get(c), TruststorePassword: s.truststorePass.Get(c), TruststoreType: s.trustTyp.Get(c),
			Keystore: s.keystore.Get(c), KeystorePassword: s.keystorePass.Get(c), KeystoreType: s.keyTyp.Get(c),
			IncludeProtocols: s.protocols.Get(c), IncludeCipherSuites: s.ciphers.Get(c),
			SkipHostnameVerification: s.endpointID.Get(c) == "",
		})
		for _, p := range problems {
			key := s.keyFor(p.Option)
			if p.Warning {
				c.Warnf(key, "%v", p.Err)
				continue
			}
			c.Errorf(key, "%v", p.Err)
			ok = false
		}
		if cfg != nil {
			opts = append(opts, kgo.DialTLSConfig(cfg))
		}
	}
	if proto == "sasl_plaintext" || proto == "sasl_ssl" {
		m, err := s.mechanismFor(c)
		if err != nil {
			c.Errorf(s.jaas.Name(), "%v", err)
			ok = false
		} else {
			opts = append(opts, kgo.SASL(m))
		}
	}
	return opts, ok
}

// keyFor names the Kafka property behind a TLS builder's option.
func (s security) keyFor(option string) string {
	switch {
	case strings.HasPrefix(option, "truststore"):
		return s.truststore.Name()
	case strings.HasPrefix(option, "keystore"):
		return s.keystore.Name()
	case strings.Contains(option, "protocols"):
		return s.protocols.Name()
	case strings.Contains(option, "cipher"):
		return s.ciphers.Name()
	}
	return s.protocol.Name()
}

func (s security) mechanismFor(c *config.Context) (sasl.Mechanism, error) {
	user, pass, err := ParseJAAS(s.jaas.Get(c))
	if err != nil {
		return nil, err
	}
	switch s.mechanism.Get(c) {
	case "scram-sha-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "scram-sha-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
}

// ParseJAAS reads username and password from a JAAS login line such as
// `org.apache.kafka.common.security.plain.PlainLoginModule required
// username="u" password="p";`.
func ParseJAAS(line string) (user, pass string, err error) {
	if line == "" {
		return "", "", fmt.Errorf("required with a SASL security.protocol")
	}
	for _, m := range jaasField.FindAllStringSubmatch(line, -1) {
		v := strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[2])
		switch m[1] {
		case "username":
			user = v
		case "password":
			pass = v
		}
	}
	if user == "" {
		return "", "", fmt.Errorf(`no username="..." in the login line`)
	}
	return user, pass, nil
}
