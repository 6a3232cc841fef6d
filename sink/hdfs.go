package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
)

// HDFSOptions configure an hdfs sink (Flume's HDFSEventSink keys).
type HDFSOptions struct {
	Path              string        // hdfs.path: hdfs://host:port/dir, /dir (fs.defaultFS) or file:///dir, with escapes
	FilePrefix        string        // hdfs.filePrefix, with escapes
	FileSuffix        string        // hdfs.fileSuffix; empty: the codec's extension
	InUsePrefix       string        // hdfs.inUsePrefix
	InUseSuffix       string        // hdfs.inUseSuffix ("" with emptyInUseSuffix)
	RollInterval      time.Duration // hdfs.rollInterval; 0: never by time
	RollSize          int64         // hdfs.rollSize, event body bytes; 0: never by size
	RollCount         int64         // hdfs.rollCount, events; 0: never by count
	IdleTimeout       time.Duration // hdfs.idleTimeout; 0: never
	MaxOpenFiles      int           // hdfs.maxOpenFiles
	BatchSize         int           // hdfs.batchSize
	CallTimeout       time.Duration // hdfs.callTimeout: one bucket's write and close in a batch
	CloseTries        int           // hdfs.closeTries: rename attempts of a rolled file; 0: forever
	RetryInterval     time.Duration // hdfs.retryInterval: between two of them
	FileType          string        // sequencefile, datastream or compressedstream
	WriteFormat       string        // writable or text (SequenceFile)
	Codec             hdfsCodec     // hdfs.codeC; zero: none (CompressedStream, or a SequenceFile's blocks)
	Serializer        SerializerOptions
	TimeZone          *time.Location // hdfs.timeZone; nil: local
	Round             pathRounding   // hdfs.round, roundValue, roundUnit
	UseLocalTimeStamp bool           // hdfs.useLocalTimeStamp
	// InUseList is the local file naming this sink's in-use files, for their
	// recovery on start (hdfs_inuse.go); empty: defaultInUseList.
	InUseList string
}

// HDFS is Flume's HDFS sink: each event goes to the file of its bucket,
// hdfs.path and hdfs.filePrefix with the event's escapes filled in, named
// <inUsePrefix><prefix>.<n><suffix><inUseSuffix> while in use and renamed
// to <prefix>.<n><suffix> when rolled (rollInterval, rollSize, rollCount,
// idleTimeout, maxOpenFiles, or the sink stopping).
//
// Unlike Flume, every batch is durable before its take commits: each
// bucket's share of the batch is written to its file and the file closed,
// which waits for the DataNodes' acks and the NameNode's complete; the next
// batch appends (hdfs_fs.go says why not the Go client's Flush). No file is
// open between batches, so a crash leaves in-use files closed and whole.
type HDFS struct {
	name    string
	opts    HDFSOptions
	log     *slog.Logger
	counter counter.Sink
	eng     *Engine // nil until Start

	// Seams for tests.
	now    func() time.Time
	openFS func() (hdfsFS, error)

	dir, prefix pathTemplate

	// State owned by the runner goroutine.
	fs      hdfsFS
	buckets map[string]*hdfsBucket
	made    map[string]bool // directories made
	serial  int64           // the last file number
	renames []*hdfsRename   // rolled files whose rename failed, to try again
	inUse   *inUseList      // this sink's in-use files, on the local disk
	// abandoned: files of failed batches left open, to recover (abandon).
	abandoned []*hdfsAbandoned
	// fullLogged: the last failure was HDFS being full, and was logged.
	fullLogged bool
	// appendRefused counts files rolled because the NameNode refused to
	// append to them past appendWait (flumed's AppendRefusedRollCount).
	appendRefused atomic.Int64
}

// hdfsBucket is the in-use file of one bucket.
type hdfsBucket struct {
	key        string // directory + "/" + prefix, escapes filled
	dir        string
	prefix     string
	tmp, final string
	format     hdfsFormat
	created    bool      // the file exists
	size       int64     // its bytes, all durable
	opened     time.Time // first write
	lastWrite  time.Time
	events     int64 // for rollCount
	bodyBytes  int64 // for rollSize
	pending    []channel.Event
}

// hdfsRename is a rename of a rolled file that failed and is tried again.
type hdfsRename struct {
	from, to string
	tries    int
	next     time.Time
}

var (
	_ Sink              = (*HDFS)(nil)
	_ BatchSizer        = (*HDFS)(nil)
	_ BatchSizeKeyer    = (*HDFS)(nil)
	_ counter.Monitored = (*HDFS)(nil)
)

// The hdfs sink's keys (Flume's names and defaults).
var (
	hdfsPath          = config.String("hdfs.path", "", "where files go: hdfs://host:port/dir, /dir (fs.defaultFS of $HADOOP_CONF_DIR) or file:///dir, with Flume's escapes").Required()
	hdfsFilePrefix    = config.String("hdfs.filePrefix", "FlumeData", "the start of every file name, with escapes")
	hdfsFileSuffix    = config.String("hdfs.fileSuffix", "", "the end of every file name (empty: the codec's extension)")
	hdfsInUsePrefix   = config.String("hdfs.inUsePrefix", "", "the start of a file's name while it is written")
	hdfsInUseSuffix   = config.String("hdfs.inUseSuffix", ".tmp", "the end of a file's name while it is written")
	hdfsEmptyInUse    = config.Bool("hdfs.emptyInUseSuffix", false, "no in-use suffix at all (hdfs.inUseSuffix is then ignored)")
	hdfsRollInterval  = config.Seconds("hdfs.rollInterval", 30*time.Second, "roll a file this long after its first write; 0 never")
	hdfsRollSize      = config.Int64("hdfs.rollSize", 1024, "roll a file once its events' bodies reach this many bytes; 0 never")
	hdfsRollCount     = config.Int64("hdfs.rollCount", 10, "roll a file once it has this many events; 0 never")
	hdfsIdleTimeout   = config.Seconds("hdfs.idleTimeout", 0, "roll a file not written for this long; 0 never")
	hdfsMaxOpenFiles  = config.Int("hdfs.maxOpenFiles", 5000, "the most files in use at once; past it the least recently written is rolled")
	hdfsBatchSize     = config.Int("hdfs.batchSize", 100, "the most events taken, written and made durable in one transaction")
	hdfsCallTimeout   = config.Millis("hdfs.callTimeout", 30*time.Second, "the longest a bucket's write and close to the DataNodes may take")
	hdfsCloseTries    = config.Int("hdfs.closeTries", 0, "how many times the rename of a rolled file is tried; 0 until it succeeds")
	hdfsRetryInterval = config.Seconds("hdfs.retryInterval", 180*time.Second, "the time between two tries of a rename")
	hdfsFileType      = config.OneOf("hdfs.fileType", "SequenceFile", []string{"SequenceFile", "DataStream", "CompressedStream"},
		"SequenceFile (LongWritable timestamp keys), DataStream (the serializer's bytes) or CompressedStream (them, compressed by hdfs.codeC)")
	hdfsWriteFormat = config.OneOf("hdfs.writeFormat", "Writable", []string{"Writable", "Text"},
		"SequenceFile values: BytesWritable or Text of the body")
	hdfsCodeC          = config.String("hdfs.codeC", "", "the codec of CompressedStream, or of a block-compressed SequenceFile: gzip (.gz), bzip2 (.bz2), snappy (.snappy, Hadoop's block framing) or default (zlib, .deflate); lzo refused")
	hdfsTimeZone       = config.String("hdfs.timeZone", "", "the time zone of the time escapes (an IANA name); empty: local")
	hdfsUseLocalTime   = config.Bool("hdfs.useLocalTimeStamp", false, "time escapes use the sink's clock instead of the timestamp header")
	hdfsRound          = config.Bool("hdfs.round", false, "round the time escapes' timestamp down")
	hdfsRoundValue     = config.Int("hdfs.roundValue", 1, "to a multiple of this many roundUnits")
	hdfsRoundUnit      = config.OneOf("hdfs.roundUnit", "second", []string{"second", "minute", "hour"}, "the rounding's unit")
	hdfsSerializer     = config.String("serializer", "text", "DataStream and CompressedStream: text, header_and_text or avro_event")
	hdfsSerializerKeys = config.Nested("serializer.*", "the serializer's keys (see the serializers)")
	hdfsInUseList      = config.String("hdfs.inUseList", "", "flumed only: a local file naming the sink's in-use files, "+
		"which a restart after a crash closes, cuts to their last committed batch and renames; empty: ~/.flume/hdfs-sink/<sink>-<hash of hdfs.path>.inuse")
)

// hdfsType declares the hdfs sink.
var hdfsType = &config.Spec{
	Type:    "hdfs",
	Classes: []string{"org.apache.flume.sink.hdfs.HDFSEventSink"},
	Doc: "every batch is durable in HDFS (written, then closed: acked by the DataNodes, completed by the NameNode) " +
		"before its take commits; no file stays open between batches",
	Keys: []config.Decl{hdfsPath, hdfsFilePrefix, hdfsFileSuffix, hdfsInUsePrefix, hdfsInUseSuffix, hdfsEmptyInUse,
		hdfsRollInterval, hdfsRollSize, hdfsRollCount, hdfsIdleTimeout, hdfsMaxOpenFiles, hdfsBatchSize,
		hdfsCallTimeout, hdfsCloseTries, hdfsRetryInterval, hdfsFileType, hdfsWriteFormat, hdfsCodeC,
		hdfsTimeZone, hdfsUseLocalTime, hdfsRound, hdfsRoundValue, hdfsRoundUnit, hdfsSerializer, hdfsSerializerKeys, hdfsInUseList,
		config.Refuse("hdfs.kerberosPrincipal", "Kerberos is not supported by flumed: it writes to HDFS with simple authentication only"),
		config.Refuse("hdfs.kerberosKeytab", "Kerberos is not supported by flumed: it writes to HDFS with simple authentication only"),
		config.Refuse("hdfs.proxyUser", "not supported by flumed: set HADOOP_USER_NAME in flumed's environment to write as another user"),
		config.Ignore("hdfs.minBlockReplicas", "flumed never rolls a file because its block is under-replicated; ignored"),
		config.Ignore("hdfs.threadsPoolSize", "flumed writes from the sink's own goroutine; ignored"),
		config.Ignore("hdfs.rollTimerPoolSize", "flumed rolls files from the sink's own goroutine; ignored"),
	},
}

// NewHDFS builds an hdfs sink; the options are taken as they are (the
// factory reads and checks them).
func NewHDFS(name string, opts HDFSOptions, log *slog.Logger) (*HDFS, error) {
	opts.BatchSize = max(opts.BatchSize, 1)
	opts.MaxOpenFiles = max(opts.MaxOpenFiles, 1)
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = hdfsCallTimeout.Default()
	}
	if opts.TimeZone == nil {
		opts.TimeZone = time.Local
	}
	if opts.FileType == "" {
		opts.FileType = "datastream"
	}
	if opts.InUseList == "" {
		opts.InUseList = defaultInUseList(name, opts.Path)
	}
	scheme, authority, p, err := fsRoot(opts.Path)
	if err != nil {
		return nil, err
	}
	hosts := lookupHostNames()
	s := &HDFS{name: name, opts: opts, log: orDiscard(log), now: time.Now}
	if s.dir, err = parsePathTemplate(p, hosts); err != nil {
		return nil, fmt.Errorf("hdfs.path: %w", err)
	}
	if s.prefix, err = parsePathTemplate(opts.FilePrefix, hosts); err != nil {
		return nil, fmt.Errorf("hdfs.filePrefix: %w", err)
	}
	s.openFS = func() (hdfsFS, error) { return openFS(scheme, authority, opts.CallTimeout) }
	return s, nil
}

func newHDFSFactory(name string, c *config.Context, log *slog.Logger) (Sink, error) {
	o := HDFSOptions{
		Path:              hdfsPath.Get(c),
		FilePrefix:        hdfsFilePrefix.Get(c),
		FileSuffix:        hdfsFileSuffix.Get(c),
		InUsePrefix:       hdfsInUsePrefix.Get(c),
		InUseSuffix:       hdfsInUseSuffix.Get(c),
		RollInterval:      hdfsRollInterval.Get(c),
		RollSize:          hdfsRollSize.Get(c),
		RollCount:         hdfsRollCount.Get(c),
		IdleTimeout:       hdfsIdleTimeout.Get(c),
		MaxOpenFiles:      hdfsMaxOpenFiles.Get(c),
		BatchSize:         hdfsBatchSize.Get(c),
		CallTimeout:       hdfsCallTimeout.Get(c),
		CloseTries:        hdfsCloseTries.Get(c),
		RetryInterval:     hdfsRetryInterval.Get(c),
		FileType:          hdfsFileType.Get(c),
		WriteFormat:       hdfsWriteFormat.Get(c),
		UseLocalTimeStamp: hdfsUseLocalTime.Get(c),
		InUseList:         hdfsInUseList.Get(c),
	}
	if hdfsEmptyInUse.Get(c) {
		o.InUseSuffix = ""
		if _, set := hdfsInUseSuffix.Lookup(c); set {
			c.Warnf(hdfsInUseSuffix.Name(), "ignored: hdfs.emptyInUseSuffix is true")
		}
	}
	for _, k := range []config.Key[time.Duration]{hdfsRollInterval, hdfsIdleTimeout, hdfsRetryInterval} {
		if k.Get(c) < 0 {
			c.Errorf(k.Name(), "must not be negative")
		}
	}
	for _, k := range []config.Key[int64]{hdfsRollSize, hdfsRollCount} {
		if k.Get(c) < 0 {
			c.Errorf(k.Name(), "must not be negative")
		}
	}
	for _, k := range []config.Key[int]{hdfsBatchSize, hdfsMaxOpenFiles} {
		if k.Get(c) < 1 {
			c.Errorf(k.Name(), "must be at least 1, not %d", k.Get(c))
		}
	}
	if o.CloseTries < 0 {
		c.Errorf(hdfsCloseTries.Name(), "must be 0 (until it succeeds) or more, not %d", o.CloseTries)
	}
	if o.CallTimeout <= 0 {
		c.Errorf(hdfsCallTimeout.Name(), "must be more than 0")
	}
	if tz := hdfsTimeZone.Get(c); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			c.Errorf(hdfsTimeZone.Name(), "unknown time zone %q", tz)
		}
		o.TimeZone = loc
	}
	if hdfsRound.Get(c) {
		o.Round.Value = hdfsRoundValue.Get(c)
		limit := 60
		switch hdfsRoundUnit.Get(c) {
		case "second":
			o.Round.Unit = time.Second
		case "minute":
			o.Round.Unit = time.Minute
		case "hour":
			o.Round.Unit, limit = time.Hour, 24
		}
		if o.Round.Value < 1 || o.Round.Value > limit {
			c.Errorf(hdfsRoundValue.Name(), "must be from 1 to %d for %ss, not %d", limit, hdfsRoundUnit.Get(c), o.Round.Value)
		}
	}
	codec := strings.ToLower(strings.TrimSpace(hdfsCodeC.Get(c)))
	switch {
	case codec == "":
		if o.FileType == "compressedstream" {
			c.Errorf(hdfsCodeC.Name(), "required with hdfs.fileType = CompressedStream (gzip, bzip2, snappy or default)")
		}
	case o.FileType == "datastream":
		c.Errorf(hdfsCodeC.Name(), "DataStream files are not compressed: remove hdfs.codeC or set hdfs.fileType = CompressedStream")
	default:
		cc, ok := hdfsCodecs[strings.TrimSuffix(codec, "codec")]
		if !ok {
			cc, ok = hdfsCodecs[codec]
		}
		if ok {
			o.Codec = cc
		} else if why, known := refusedCodecs[strings.TrimSuffix(strings.TrimPrefix(codec, "org.apache.hadoop.io.compress."), "codec")]; known {
			c.Errorf(hdfsCodeC.Name(), "%s: %s", codec, why)
		} else {
			c.Errorf(hdfsCodeC.Name(), "unknown codec %q (gzip, bzip2, snappy or default)", codec)
		}
	}
	if o.FileType != "sequencefile" {
		o.Serializer = readSerializer(c, hdfsSerializer)
	} else if _, set := hdfsSerializer.Lookup(c); set {
		c.Warnf(hdfsSerializer.Name(), "ignored: SequenceFiles are written by hdfs.writeFormat")
	}
	s, err := NewHDFS(name, o, log)
	if err != nil {
		if o.Path != "" { // an empty one is reported as missing
			c.Errorf(hdfsPath.Name(), "%v", err)
		}
		return nil, err
	}
	return s, nil
}

// Name implements Sink.
func (s *HDFS) Name() string { return s.name }

// BatchSize implements BatchSizer.
func (s *HDFS) BatchSize() int { return s.opts.BatchSize }

// BatchSizeKey implements BatchSizeKeyer.
func (s *HDFS) BatchSizeKey() string { return "hdfs.batchSize" }

// FlumeMetrics implements counter.Monitored.
// Beside Flume's SinkCounter it reports AppendRefusedRollCount: files rolled
// because the NameNode refused to append to them (see open).
func (s *HDFS) FlumeMetrics() map[string]string {
	m := s.counter.FlumeMetrics()
	m["AppendRefusedRollCount"] = strconv.FormatInt(s.appendRefused.Load(), 10)
	return m
}

// Start connects to the file system, recovers the in-use files an earlier
// run left (hdfs_inuse.go) and binds the sink to its channel.
func (s *HDFS) Start(ctx context.Context, ch channel.Channel) error {
	inUse, err := openInUseList(s.opts.InUseList)
	if err != nil {
		return err
	}
	fs, err := s.openFS()
	if err != nil {
		s.counter.ConnectionFailed.Add(1)
		return err
	}
	s.fs, s.inUse = fs, inUse
	if len(inUse.files) > 0 {
		// A file that cannot be recovered now (HDFS down) stays listed for
		// the next start; the sink writes to new files meanwhile.
		if err := s.recoverInUse(ctx); err != nil {
			s.log.Warn("in-use files of an earlier run not recovered (tried again at the next start)", "sink", s.name, "err", err)
		}
	}
	s.buckets = map[string]*hdfsBucket{}
	s.made = map[string]bool{}
	s.serial = s.now().UnixMilli()
	s.eng = NewEngine(EngineOptions{
		Sink: s.name, Channel: ch, BatchSize: s.opts.BatchSize, Depth: DefaultPipelineDepth,
		Counter: &s.counter, Log: s.log,
	}, DeliverFunc(s.write))
	s.counter.Started()
	return nil
}

// Process rolls the files that are due, then writes one batch.
func (s *HDFS) Process(ctx context.Context) (Status, error) {
	if s.eng == nil {
		return Backoff, errors.New("hdfs sink not started")
	}
	s.rollDue()
	return s.eng.Process(ctx)
}

// Stop settles the batches under way and rolls every file. Idempotent.
func (s *HDFS) Stop() error {
	if s.eng == nil {
		return nil
	}
	_ = s.eng.Settle(context.Background())
	for _, b := range s.buckets {
		s.roll(b)
	}
	s.retryRenames(true)
	s.recoverAbandoned(true)
	_ = s.fs.Close()
	s.eng = nil
	s.counter.Stopped()
	return nil
}

// rollDue rolls the files whose rollInterval or idleTimeout has passed and
// tries again the renames that are due.
func (s *HDFS) rollDue() {
	now := s.now()
	for _, b := range s.buckets {
		if (s.opts.RollInterval > 0 && now.Sub(b.opened) >= s.opts.RollInterval) ||
			(s.opts.IdleTimeout > 0 && now.Sub(b.lastWrite) >= s.opts.IdleTimeout) {
			s.roll(b)
		}
	}
	s.retryRenames(false)
	s.recoverAbandoned(false)
}

// write is the Delivery: each event to its bucket, every bucket's share
// written and closed (durable) before it returns nil and the take commits.
func (s *HDFS) write(_ context.Context, events []channel.Event) error {
	now := s.now()
	var touched []*hdfsBucket
	var sb strings.Builder
	for _, e := range events {
		dir, prefix, err := s.bucketOf(&sb, e, now)
		if err != nil {
			s.dropPending(touched)
			return err
		}
		key := dir + "/" + prefix
		b := s.buckets[key]
		if b != nil && s.full(b) {
			// Flume rolls before the event that finds the file full.
			if err := s.flush(b, now); err != nil {
				s.dropPending(touched)
				return err
			}
			s.roll(b)
			b = nil
		}
		if b == nil {
			if b, err = s.newBucket(key, dir, prefix); err != nil {
				s.dropPending(touched)
				return err
			}
		}
		if len(b.pending) == 0 {
			touched = append(touched, b)
		}
		b.pending = append(b.pending, e)
		b.events++
		b.bodyBytes += int64(len(e.Body))
	}
	for _, b := range touched {
		if len(b.pending) == 0 {
			continue // flushed by a roll, and a new bucket took over
		}
		if err := s.flush(b, now); err != nil {
			s.dropPending(touched)
			return err
		}
	}
	return nil
}

func (s *HDFS) dropPending(bs []*hdfsBucket) {
	for _, b := range bs {
		clear(b.pending)
		b.pending = b.pending[:0]
	}
}

func (s *HDFS) full(b *hdfsBucket) bool {
	return (s.opts.RollCount > 0 && b.events >= s.opts.RollCount) ||
		(s.opts.RollSize > 0 && b.bodyBytes >= s.opts.RollSize)
}

// bucketOf fills the event's escapes into the directory and the prefix.
func (s *HDFS) bucketOf(sb *strings.Builder, e channel.Event, now time.Time) (dir, prefix string, err error) {
	var ts int64
	var tsText string
	if s.dir.needsTime || s.prefix.needsTime {
		if s.opts.UseLocalTimeStamp {
			ts = now.UnixMilli()
			tsText = strconv.FormatInt(ts, 10)
		} else {
			v, ok := e.Headers["timestamp"]
			if !ok {
				return "", "", errNoTimestamp
			}
			if ts, err = strconv.ParseInt(v, 10, 64); err != nil {
				return "", "", fmt.Errorf("timestamp header %q is not a number of milliseconds", v)
			}
			tsText = v
		}
	}
	sb.Reset()
	s.dir.expand(sb, e.Headers, ts, tsText, s.opts.TimeZone, s.opts.Round)
	dir = path.Clean(sb.String())
	sb.Reset()
	s.prefix.expand(sb, e.Headers, ts, tsText, s.opts.TimeZone, s.opts.Round)
	return dir, sb.String(), nil
}

// newBucket starts a bucket, rolling the least recently written one first
// when maxOpenFiles are in use. Its file is created by its first flush.
func (s *HDFS) newBucket(key, dir, prefix string) (*hdfsBucket, error) {
	if len(s.buckets) >= s.opts.MaxOpenFiles {
		var oldest *hdfsBucket
		for _, b := range s.buckets {
			if len(b.pending) == 0 && (oldest == nil || b.lastWrite.Before(oldest.lastWrite)) {
				oldest = b
			}
		}
		if oldest != nil {
			s.roll(oldest)
		}
	}
	f, err := s.newFormat()
	if err != nil {
		return nil, err
	}
	b := &hdfsBucket{key: key, dir: dir, prefix: prefix, format: f}
	s.buckets[key] = b
	s.name1(b)
	return b, nil
}

// name1 numbers the bucket's file: <prefix>.<n><suffix>, n counting up from
// the sink's start time in milliseconds, as Flume's BucketWriter counts.
func (s *HDFS) name1(b *hdfsBucket) {
	s.serial++
	name := b.prefix + "." + strconv.FormatInt(s.serial, 10)
	if s.opts.FileSuffix != "" {
		name += s.opts.FileSuffix
	} else if s.opts.Codec.name != "" {
		// Flume adds the codec's extension with any file type, a
		// compressed SequenceFile's too (Hadoop's -text reads it by its
		// SEQ magic first).
		name += s.opts.Codec.ext
	}
	b.final = b.dir + "/" + name
	b.tmp = b.dir + "/" + s.opts.InUsePrefix + name + s.opts.InUseSuffix
}

func (s *HDFS) newFormat() (hdfsFormat, error) {
	switch s.opts.FileType {
	case "sequencefile":
		var codec *hdfsCodec
		if s.opts.Codec.name != "" {
			codec = &s.opts.Codec
		}
		return newSequenceFile(s.opts.WriteFormat == "text", codec)
	case "compressedstream":
		ser, err := NewSerializer(s.opts.Serializer)
		if err != nil {
			return nil, err
		}
		return &compressedStream{ser: ser, codec: s.opts.Codec}, nil
	}
	ser, err := NewSerializer(s.opts.Serializer)
	if err != nil {
		return nil, err
	}
	return dataStream{ser: ser}, nil
}

// flush writes the bucket's pending events to its file and closes it: once
// it returns nil they are durable.
func (s *HDFS) flush(b *hdfsBucket, now time.Time) error {
	evs := b.pending
	if len(evs) == 0 {
		return nil
	}
	// The events are the channel's (read-only, not to be kept): drop them
	// from the reused slice once written, so an idle bucket holds no bodies.
	defer func() { clear(evs); b.pending = b.pending[:0] }()
	buf, err := b.format.Append(nil, evs, now)
	if err != nil {
		s.abandon(b)
		return fmt.Errorf("serialize for %s: %w", b.tmp, err)
	}
	f, err := s.open(b)
	if err != nil {
		s.counter.ConnectionFailed.Add(1)
		s.abandon(b)
		return s.full1(err)
	}
	if _, err := f.Write(buf); err != nil {
		_ = f.Close()
		s.abandon(b)
		return s.full1(fmt.Errorf("write %s: %w", b.tmp, err))
	}
	// The durability point: the take commits only after this close.
	if err := f.Close(); err != nil {
		s.abandon(b)
		return s.full1(fmt.Errorf("close %s: %w", b.tmp, err))
	}
	if !b.created {
		b.created, b.opened = true, now
		s.counter.ConnectionCreated.Add(1)
	}
	b.size += int64(len(buf))
	b.lastWrite = now
	s.fullLogged = false
	return nil
}

// full1 marks err as errHDFSFull when HDFS refused the batch for want of
// space, and logs it once per run of such refusals: the runner's own line
// says a delivery failed, this one says why and what the operator can do.
func (s *HDFS) full1(err error) error {
	err = withRemoteMessage(err)
	if !hdfsFull(err) {
		s.fullLogged = false
		return err
	}
	if !s.fullLogged {
		s.log.Error("HDFS is full: events stay in the channel until space is given back", "sink", s.name, "err", err)
		s.fullLogged = true
	}
	return fmt.Errorf("%w: %w", errHDFSFull, err)
}

// open creates the bucket's file (with its directory) on its first batch,
// and appends to it on the next ones.
func (s *HDFS) open(b *hdfsBucket) (hdfsFile, error) {
	if b.created {
		f, err := s.fs.Append(b.tmp)
		if err == nil {
			return f, nil
		}
		if !notYetReplicated(err) {
			return nil, fmt.Errorf("append to %s: %w", b.tmp, err)
		}
		// The NameNode still refuses the append: the file is closed and
		// holds every committed batch, so roll it and start a new one
		// rather than wait on it (hdfs_fs.go, Append).
		//
		// Past appendWait the usual cause is not a slow DataNode but a
		// replica the NameNode has marked corrupt for good: the Go
		// client appends without a new generation stamp, so a DataNode's
		// late report of the previous batch (same stamp, shorter length)
		// can reach the NameNode after this file's next close, which
		// then marks the only replica corrupt ("reported length ... does
		// not match length in block map") and counts no live replica.
		// The bytes on the DataNode are whole and Hadoop's readers read
		// them; fsck says CORRUPT until the NameNode restarts. The
		// operator is told which file, and why (README, "HDFS").
		s.appendRefused.Add(1)
		s.log.Warn("rolling a file the NameNode refuses to append to: its last block may be marked corrupt "+
			"after a late DataNode report; every committed event in it is readable, but hdfs fsck lists it as CORRUPT "+
			"until the NameNode restarts (README, HDFS)",
			"sink", s.name, "file", b.final, "err", err)
		s.counter.ConnectionClosed.Add(1)
		s.rename(b.tmp, b.final)
		s.name1(b)
		b.created, b.size = false, 0
		b.events, b.bodyBytes = int64(len(b.pending)), 0
		for _, e := range b.pending {
			b.bodyBytes += int64(len(e.Body))
		}
	}
	if !s.made[b.dir] {
		if err := s.fs.MkdirAll(b.dir); err != nil {
			return nil, fmt.Errorf("make directory %s: %w", b.dir, err)
		}
		s.made[b.dir] = true
	}
	for range 100 {
		// Listed before it exists: a crash from here on leaves it listed.
		if err := s.inUse.add(b.tmp, b.final); err != nil {
			return nil, err
		}
		f, err := s.fs.Create(b.tmp)
		if errors.Is(err, os.ErrExist) {
			s.forget(b.tmp)
			s.name1(b) // another writer's, or an earlier run's: the next number
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", b.tmp, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("create a file in %s: every candidate name exists", b.dir)
}

// abandon drops a bucket whose batch failed: the file's state past its last
// durable batch is unknown, so it is never appended to again. Its failed
// batch is cut off (best effort: a torn tail would remain if the cut fails)
// and the file rolled, so that its committed batches reach their final name;
// the batch is rolled back and written again to a new file.
func (s *HDFS) abandon(b *hdfsBucket) {
	delete(s.buckets, b.key)
	b.pending = nil
	if !b.created {
		// Created (or not) by the failed batch: nothing committed is in it.
		err := s.fs.Remove(b.tmp)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			s.forget(b.tmp)
			return
		}
		// The NameNode did not answer (a timeout, a restart): the file
		// may exist, open under this sink's lease. It is removed later
		// like any abandoned file (size 0: nothing to keep), not left
		// open with an in-use name until the next start.
		s.log.Warn("abandoned empty file not removed yet: removed later", "sink", s.name, "file", b.tmp, "err", err)
		s.abandoned = append(s.abandoned, &hdfsAbandoned{tmp: b.tmp, final: b.final})
		return
	}
	if err := s.fs.Truncate(b.tmp, b.size); err != nil {
		// Still open: the failed write or close left its last block under
		// construction, under this sink's lease. Its lease is recovered,
		// the batch cut and the file renamed later (rollDue, Stop, or the
		// next start: it stays on the in-use list), not now: with a
		// DataNode down the recovery cannot finish.
		s.log.Warn("abandoned file still open: recovered later", "sink", s.name, "file", b.tmp, "size", b.size, "err", err)
		s.abandoned = append(s.abandoned, &hdfsAbandoned{tmp: b.tmp, final: b.final, size: b.size})
		return
	}
	s.rename(b.tmp, b.final)
}

// hdfsAbandoned is a file of a failed batch still open: its lease is to be
// recovered, its committed size kept, and it renamed.
type hdfsAbandoned struct {
	tmp, final string
	size       int64 // the end of its last committed batch
	next       time.Time
}

// recoverAbandoned tries to close, cut and rename the abandoned files that
// are due (all of them, at stop), each within the call timeout.
func (s *HDFS) recoverAbandoned(all bool) {
	now := s.now()
	kept := s.abandoned[:0]
	for _, a := range s.abandoned {
		if !all && now.Before(a.next) {
			kept = append(kept, a)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.CallTimeout)
		err := s.recoverFile(ctx, a.tmp, a.final, a.size)
		cancel()
		if err != nil {
			s.log.Warn("abandoned file not recovered yet", "sink", s.name, "file", a.tmp, "err", err)
			a.next = now.Add(5 * time.Second)
			kept = append(kept, a)
			continue
		}
		s.forget(a.tmp)
	}
	s.abandoned = kept
}

// forget drops a renamed file from the in-use list. Should the list keep it
// (a failed write), the next start finds it renamed and drops it then.
func (s *HDFS) forget(tmp string) {
	if err := s.inUse.remove(tmp); err != nil {
		s.log.Warn("drop renamed file from the in-use list", "sink", s.name, "file", tmp, "err", err)
	}
}

// roll ends a bucket's file: renamed to its final name.
func (s *HDFS) roll(b *hdfsBucket) {
	delete(s.buckets, b.key)
	if !b.created {
		return
	}
	s.counter.ConnectionClosed.Add(1)
	s.rename(b.tmp, b.final)
}

func (s *HDFS) rename(from, to string) {
	if from == to {
		return
	}
	if err := s.fs.Rename(from, to); err != nil {
		s.log.Warn("rename rolled file", "sink", s.name, "from", from, "to", to, "err", err)
		s.renames = append(s.renames, &hdfsRename{from: from, to: to, tries: 1, next: s.now().Add(s.opts.RetryInterval)})
		return
	}
	s.forget(from)
	s.log.Debug("rolled file", "sink", s.name, "file", to)
}

// retryRenames tries again the renames that are due (all of them, at stop),
// until closeTries.
func (s *HDFS) retryRenames(all bool) {
	now := s.now()
	kept := s.renames[:0]
	for _, r := range s.renames {
		if !all && now.Before(r.next) {
			kept = append(kept, r)
			continue
		}
		err := s.fs.Rename(r.from, r.to)
		if err == nil {
			s.forget(r.from)
			continue
		}
		r.tries++
		if s.opts.CloseTries > 0 && r.tries >= s.opts.CloseTries {
			s.log.Error("giving up renaming rolled file (its data is kept under the in-use name)", "sink", s.name,
				"from", r.from, "to", r.to, "tries", r.tries, "err", err)
			continue
		}
		r.next = now.Add(s.opts.RetryInterval)
		kept = append(kept, r)
	}
	s.renames = kept
}
