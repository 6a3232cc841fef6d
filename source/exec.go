package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flumed/flumed/channel"
	"github.com/flumed/flumed/internal/config"
	"github.com/flumed/flumed/internal/counter"
	"github.com/flumed/flumed/source/internal/charset"
	"github.com/flumed/flumed/source/internal/logthrottle"
)

// Exec is the exec source (FLUME.md §2.1): it runs a command and turns every
// line the command writes to stdout into one event without headers ("\n",
// "\r" and "\r\n" are stripped). Lines are put in batches of batchSize, or
// when batchTimeout has passed since the first line of a batch was read.
//
// Unlike Flume, a full channel never loses lines: the batch is retried with
// backoff (1 s, doubling to 5 s) until it commits, and meanwhile nothing more
// is read, so the pipe fills and the child blocks on write. Only Stop gives
// up on a batch (after one last attempt), since the child is killed then.
//
// stderr is always read, so a chatty child never blocks on it, and logged
// line by line when logStdErr is set. With restart the command is run again
// restartThrottle after it exits. Stop sends SIGTERM to the child's process
// group, SIGKILL after a grace period, and waits.
//
// A line longer than maxLineLength bytes (a flumed key; see execType) is
// cut into events of that size, so memory stays bounded; the cuts are counted
// (SplitLines) and logged. Bytes pass through unchanged: charset may name
// UTF-8, US-ASCII or ISO-8859-1, for which Flume's decode and re-encode is the
// identity on valid input (Flume would replace malformed UTF-8; flumed keeps it).
type Exec struct {
	name     string
	log      *slog.Logger
	opts     execOptions
	warn     *logthrottle.Log
	counters counter.Source
	splits   atomic.Int64

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

type execOptions struct {
	argv            []string
	restart         bool
	restartThrottle time.Duration
	logStdErr       bool
	batchSize       int
	batchTimeout    time.Duration
	maxLineLength   int
	// retryMin and retryMax bound the backoff between attempts to put a
	// batch the channel refused.
	retryMin, retryMax time.Duration
	// killGrace is how long Stop waits after SIGTERM before SIGKILL.
	killGrace time.Duration
}

var (
	_ Source            = (*Exec)(nil)
	_ BatchSizer        = (*Exec)(nil)
	_ BatchSizeKeyer    = (*Exec)(nil)
	_ counter.Monitored = (*Exec)(nil)
)

var (
	execCommand  = config.String("command", "", "the command to run").Required()
	execShell    = config.String("shell", "", "run command through this shell, as `/bin/sh -c`")
	execRestart  = config.Bool("restart", false, "run the command again when it exits")
	execThrottle = config.Millis("restartThrottle", 10*time.Second, "the wait before a restart")
	execStdErr   = config.Bool("logStdErr", false, "log the command's stderr line by line")
	execBatch    = config.Int("batchSize", 20, "lines put in one transaction")
	execTimeout  = config.Millis("batchTimeout", 3*time.Second, "a batch is put this long after its first line at the latest")
	execMaxLine  = config.Int("maxLineLength", 1<<20, "a longer line is cut into events of this many bytes").Flumed()
	execCharset  = config.String("charset", "UTF-8", "UTF-8, US-ASCII or ISO-8859-1; bytes pass unchanged")
)

var execType = &config.Spec{Type: "exec", Classes: []string{"org.apache.flume.source.ExecSource"},
	Doc:  "a full channel never loses lines: the batch is retried (1 s doubling to 5 s) and reading pauses; stderr is always drained; stop signals the command's process group; lines over `maxLineLength` are split",
	Keys: []config.Decl{execCommand, execShell, execRestart, execThrottle, execStdErr, execBatch, execTimeout, execMaxLine, execCharset, ProcessorKeys}}

func newExecSource(name string, c *config.Context, log *slog.Logger) (Source, error) {
	o := execOptions{
		restart:         execRestart.Get(c),
		restartThrottle: execThrottle.Get(c),
		logStdErr:       execStdErr.Get(c),
		batchSize:       execBatch.Get(c),
		batchTimeout:    execTimeout.Get(c),
		maxLineLength:   execMaxLine.Get(c),
		retryMin:        time.Second,
		retryMax:        5 * time.Second,
		killGrace:       5 * time.Second,
	}
	ok := true
	command := execCommand.Get(c)
	if shell := execShell.Get(c); shell != "" {
		o.argv = append(strings.Fields(shell), command)
	} else {
		o.argv = strings.Fields(command)
	}
	if len(o.argv) == 0 || command == "" {
		ok = false
	}
	if o.restartThrottle < 0 {
		c.Errorf("restartThrottle", "must not be negative")
		ok = false
	}
	if o.batchSize <= 0 {
		c.Errorf("batchSize", "must be positive, not %d", o.batchSize)
		ok = false
	}
	if o.batchTimeout <= 0 {
		c.Errorf("batchTimeout", "must be positive")
		ok = false
	}
	if o.maxLineLength <= 0 {
		c.Errorf("maxLineLength", "must be positive, not %d", o.maxLineLength)
		ok = false
	}
	if cs := execCharset.Get(c); !charset.Supported(cs) {
		c.Errorf("charset", "unsupported charset %q (flumed supports UTF-8, US-ASCII and ISO-8859-1)", cs)
		ok = false
	}
	if !ok {
		return nil, errConfig
	}
	return &Exec{name: name, log: log, opts: o, warn: logthrottle.New(log, logthrottle.DefaultEvery)}, nil
}

// Name returns the source's name.
func (s *Exec) Name() string { return s.name }

// BatchSize returns the configured batchSize.
func (s *Exec) BatchSize() int { return s.opts.batchSize }

// BatchSizeKey implements BatchSizeKeyer.
func (s *Exec) BatchSizeKey() string { return "batchSize" }

// FlumeMetrics returns Flume's SOURCE counters: EventReceivedCount (lines
// read), EventAcceptedCount (lines committed), ChannelWriteFail (refused
// puts) and EventReadFail (stdout read errors).
func (s *Exec) FlumeMetrics() map[string]string { return s.counters.FlumeMetrics() }

// SplitLines returns how many times a line longer than maxLineLength was cut.
func (s *Exec) SplitLines() int64 { return s.splits.Load() }

// Start checks that the command exists and starts running it in the
// background. Lines go to p until Stop.
func (s *Exec) Start(ctx context.Context, p BatchPutter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return errors.New("exec source already started")
	}
	if _, err := exec.LookPath(s.opts.argv[0]); err != nil {
		return fmt.Errorf("exec source %s: %w", s.name, err)
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.counters.Started()
	go s.run(ctx, p, s.done)
	return nil
}

// Stop kills the command's process group (SIGTERM, then SIGKILL after a grace
// period), makes one last attempt to put the lines already read, and waits
// for everything to end. Idempotent; Start may be called again afterwards.
func (s *Exec) Stop() error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	s.mu.Lock()
	s.cancel, s.done = nil, nil // a stopped source may be started again
	s.mu.Unlock()
	s.counters.Stopped()
	return nil
}

// run runs the command, again and again with restart, until ctx ends.
func (s *Exec) run(ctx context.Context, p BatchPutter, done chan struct{}) {
	defer close(done)
	for {
		status, err := s.runOnce(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Error("cannot run command", slog.Any("command", s.opts.argv), slog.Any("err", err))
		}
		if !s.opts.restart {
			s.log.Info("command exited", slog.Any("command", s.opts.argv), slog.String("status", status))
			return
		}
		s.log.Info("command exited; restarting", slog.Any("command", s.opts.argv),
			slog.String("status", status), slog.Duration("in", s.opts.restartThrottle))
		if !sleepCtx(ctx, s.opts.restartThrottle) {
			return
		}
	}
}

// runOnce runs the command once, delivering its stdout until it ends (or ctx
// does), and returns how it exited.
func (s *Exec) runOnce(ctx context.Context, p BatchPutter) (string, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return "", err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return "", err
	}
	cmd := exec.Command(s.opts.argv[0], s.opts.argv[1:]...)
	// Our own pipes rather than cmd.StdoutPipe, so Wait never closes them
	// under the reader; a process group so Stop reaches grandchildren too.
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	outW.Close() // the child holds its own copies
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return "", err
	}
	defer outR.Close()
	defer errR.Close()

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()

	finished := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		select {
		case <-ctx.Done():
			s.terminate(cmd.Process.Pid, exited)
			// Whatever still holds the pipes (a grandchild outside the group)
			// must not keep the readers blocked.
			outR.Close()
			errR.Close()
		case <-finished:
		}
	}()

	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		s.drainStderr(errR)
	}()

	s.pump(ctx, outR, p)
	select {
	case <-exited:
	case <-ctx.Done():
		<-exited
	}
	// A grandchild may keep stderr open after the command exited; stdout
	// reached EOF, so give stderr a moment and then stop reading it.
	select {
	case <-stderrDone:
	case <-time.After(time.Second):
		errR.Close()
		<-stderrDone
	}
	close(finished)
	<-killerDone
	return exitStatus(waitErr), nil
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return "exit status 0"
	case errors.As(err, &ee):
		return ee.ProcessState.String()
	default:
		return err.Error()
	}
}

// terminate sends SIGTERM to the process group of pid, and SIGKILL when the
// group has not gone after killGrace.
func (s *Exec) terminate(pid int, exited <-chan struct{}) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	deadline := time.NewTimer(s.opts.killGrace)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	leaderGone := false
	for {
		select {
		case <-exited:
			leaderGone = true
			exited = nil
		case <-tick.C:
		case <-deadline.C:
			s.log.Warn("command ignored SIGTERM; killing its process group", slog.Duration("grace", s.opts.killGrace))
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			if !leaderGone {
				<-exited
			}
			return
		}
		// The group lives on while any member does; Linux does not reuse a
		// pid that is still some group's id, so this probe is about our group.
		if leaderGone && syscall.Kill(-pid, 0) != nil {
			return
		}
	}
}

// drainStderr reads the child's stderr to the end, logging lines when
// logStdErr is set.
func (s *Exec) drainStderr(r io.Reader) {
	lr := newLineReader(r, s.opts.maxLineLength)
	for n := 1; ; n++ {
		line, _, err := lr.next()
		if err != nil {
			return
		}
		if s.opts.logStdErr {
			s.log.Info("stderr", slog.Int("line", n), slog.String("text", string(line)))
		}
	}
}

// pump reads stdout line by line and delivers batches. It returns at the end
// of stdout, or when ctx ends, once its reader goroutine has finished.
func (s *Exec) pump(ctx context.Context, r io.Reader, p BatchPutter) {
	lines := make(chan []byte)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(lines)
		lr := newLineReader(r, s.opts.maxLineLength)
		for {
			line, split, err := lr.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					s.counters.EventReadFail.Add(1)
					s.log.Error("read command output", slog.Any("err", err))
				}
				return
			}
			if split {
				n := s.splits.Add(1)
				s.warn.Warn("split", "line longer than maxLineLength cut into several events",
					slog.Int("maxLineLength", s.opts.maxLineLength), slog.Int64("total", n))
			}
			s.counters.EventReceived.Add(1)
			// Blocking here is the backpressure: while a batch is being
			// retried nothing is read, and the child blocks on its pipe.
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { <-readerDone }()

	batch := make([]channel.Event, 0, s.opts.batchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var timeout <-chan time.Time
	flush := func() {
		timer.Stop()
		timeout = nil
		if len(batch) > 0 {
			s.deliver(ctx, p, batch)
			batch = make([]channel.Event, 0, s.opts.batchSize)
		}
	}
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				flush()
				return
			}
			batch = append(batch, channel.Event{Body: line})
			if len(batch) == 1 {
				timer.Reset(s.opts.batchTimeout)
				timeout = timer.C
			}
			if len(batch) >= s.opts.batchSize {
				flush()
			}
		case <-timeout:
			flush()
		case <-ctx.Done():
			flush()
			return
		}
	}
}

// deliver puts batch through p, retrying with backoff until it commits or ctx
// ends; it always makes at least one attempt.
func (s *Exec) deliver(ctx context.Context, p BatchPutter, batch []channel.Event) {
	delay := s.opts.retryMin
	for {
		err := p.PutBatch(batch)
		if err == nil {
			s.counters.EventAccepted.Add(int64(len(batch)))
			return
		}
		s.counters.ChannelWriteFail.Add(1)
		s.warn.Warn("put", "channel refused lines; retrying, reading paused",
			slog.Int("lines", len(batch)), slog.Duration("retry", delay), slog.Any("err", err))
		if !sleepCtx(ctx, delay) {
			s.log.Warn("stopping with lines read but not committed", slog.Int("lines", len(batch)))
			return
		}
		delay = min(delay*2, s.opts.retryMax)
	}
}
