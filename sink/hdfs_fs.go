package sink

// The HDFS sink's file systems: HDFS through github.com/colinmarc/hdfs/v2
// (hdfs://) and the local one (file://), behind one small interface whose
// Close is the durability point.
//
// Why a batch is closed, not flushed (see the README, "HDFS"): the Go
// client has no hflush. Its Flush sends the packets without waiting for the
// DataNodes' acknowledgements, so a take committed after it could lose the
// batch. Its Close waits for every ack and has the NameNode complete the
// file, so the sink writes each batch to a file it opens (create, then
// append), and closes before the take commits. Between batches no file is
// open: a crash leaves in-use files closed, with every committed batch in
// them, and no lease to recover unless it struck mid-batch.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"

	"github.com/flumed/flumed/internal/fsutil"
)

// hdfsFS is where the HDFS sink writes.
type hdfsFS interface {
	// Create makes a new file, failing if it exists, and opens it.
	Create(path string) (hdfsFile, error)
	// Append opens an existing file to write at its end.
	Append(path string) (hdfsFile, error)
	// Rename moves a closed file; it fails if to exists.
	Rename(from, to string) error
	// MkdirAll makes a directory and its parents.
	MkdirAll(dir string) error
	// Truncate cuts a closed file to size (after a failed batch). When the
	// cut needs the last block recovered it returns errTruncateRecovering:
	// the file is closed again once RecoverLease returns.
	Truncate(path string, size int64) error
	// Stat returns a file's length as the NameNode has it (for a file open
	// for write: its length at its last close).
	Stat(path string) (size int64, exists bool, err error)
	// RecoverLease closes a file another (dead) writer left open, and
	// returns once it is closed.
	RecoverLease(ctx context.Context, path string) error
	// Remove deletes a file.
	Remove(path string) error
	Close() error
}

// hdfsFile is one open file. Close is durable on return: the bytes written
// are acknowledged by every DataNode of the pipeline and the NameNode has
// the file's length (HDFS), or fsynced (local).
type hdfsFile interface {
	Write(p []byte) (int, error)
	Close() error
}

// fsRoot splits hdfs.path's scheme and authority from its path and opens
// the file system it names: hdfs://host:port/..., hdfs:///... or /... (the
// NameNode of $HADOOP_CONF_DIR's fs.defaultFS, as Flume does), file:///...
func fsRoot(raw string) (scheme, authority, path string, err error) {
	if len(raw) > 0 && raw[0] == '/' {
		return "hdfs", "", raw, nil
	}
	// Not url.Parse: the escapes (%Y, %{h}) are not URL escapes.
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return "", "", "", fmt.Errorf("%q is not a URL of a file system (hdfs://host:port/dir or file:///dir)", raw)
	}
	authority, path = rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	switch scheme = strings.ToLower(scheme); scheme {
	case "hdfs", "file":
	default:
		return "", "", "", fmt.Errorf("scheme %s: flumed writes to hdfs:// and file:// only", scheme)
	}
	if scheme == "file" && authority != "" {
		return "", "", "", fmt.Errorf("%q: a file:// path has no host (file:///dir)", raw)
	}
	return scheme, authority, path, nil
}

// openFS connects to the file system of scheme and authority.
func openFS(scheme, authority string, timeout time.Duration) (hdfsFS, error) {
	if scheme == "file" {
		return localFS{fs: fsutil.OS{}}, nil
	}
	var addrs []string
	if authority != "" {
		addrs = []string{authority}
	} else {
		conf, err := hadoopconf.LoadFromEnvironment()
		if err != nil {
			return nil, fmt.Errorf("read Hadoop configuration for fs.defaultFS: %w", err)
		}
		addrs = conf.Namenodes()
		if len(addrs) == 0 {
			return nil, errors.New("hdfs.path names no NameNode and $HADOOP_CONF_DIR has no fs.defaultFS: write hdfs://host:port/dir")
		}
	}
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: addrs, User: hdfsUser(),
		NamenodeDialFunc: namenodeDialer(timeout)})
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %w", addrs, err)
	}
	return &remoteFS{c: c, timeout: timeout, addrs: addrs, user: hdfsUser()}, nil
}

// hdfsUser is who the sink writes as under simple authentication:
// $HADOOP_USER_NAME, else the OS user, as Hadoop's client does.
func hdfsUser() string {
	if u := os.Getenv("HADOOP_USER_NAME"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "flumed"
}

// remoteFS is HDFS.
type remoteFS struct {
	c       *hdfs.Client
	timeout time.Duration // hdfs.callTimeout: each batch's writes and close
	addrs   []string      // the NameNodes, for recoverLease
	user    string
}

func (r *remoteFS) Create(path string) (hdfsFile, error) {
	w, err := r.c.Create(path)
	if err != nil {
		return nil, err
	}
	return r.file(w)
}

// Append opens path at its end. Right after the close of the previous batch
// the NameNode may refuse ("lastBlock ... is not sufficiently replicated
// yet": the file is complete but the DataNode has not yet reported the
// block); on ../shared/hdfs under load 65 appends of 1500 waited for that,
// up to seconds, and now and then the refusal lasted past a 30 s
// callTimeout, which wedged the bucket on that file. It tries again,
// backing off, for up to appendWait (or the call's timeout if shorter),
// then gives up with the refusal: the sink then rolls the file (closed,
// with every committed batch) and writes the batch to a new one.
func (r *remoteFS) Append(path string) (hdfsFile, error) {
	deadline := time.Now().Add(min(r.timeout, appendWait))
	wait := 5 * time.Millisecond
	for {
		w, err := r.c.Append(path)
		if err == nil {
			return r.file(w)
		}
		if !notYetReplicated(err) || time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		time.Sleep(wait)
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// appendWait bounds the wait for the NameNode to accept an append.
const appendWait = 3 * time.Second

// notYetReplicated is the NameNode's refusal to append to a file whose last
// block it has not yet heard of from a DataNode.
func notYetReplicated(err error) bool {
	var remote hdfs.Error
	return errors.As(err, &remote) && strings.Contains(remote.Message(), "not sufficiently replicated yet")
}

// errTruncateRecovering: a truncate that ends inside a block, done by the
// DataNodes in the background; the file is closed when it is done.
var errTruncateRecovering = errors.New("the last block is being recovered")

// errHDFSFull marks a batch refused because HDFS has no room for it: a
// space quota of the directory, or DataNodes without space. The batch is
// rolled back and stays in the channel until room is made.
var errHDFSFull = errors.New("HDFS is full: the batch stays in the channel until space is given back (raise or clear the quota, or free the DataNodes' disks)")

// hdfsFull says whether err is the NameNode refusing a block for want of
// space: a quota (DSQuotaExceededException) or no DataNode with room
// ("could only be written to 0 of the 1 minReplication nodes").
func hdfsFull(err error) bool {
	var remote hdfs.Error
	if !errors.As(err, &remote) {
		return false
	}
	// "could only be written to 0 of the 1 minReplication nodes. There are
	// N datanode(s) running": full when DataNodes run, down when none does.
	return strings.Contains(remote.Exception(), "DSQuotaExceededException") ||
		(strings.Contains(remote.Message(), "could only be written to 0 of the") &&
			!strings.Contains(remote.Message(), "There are 0 datanode(s) running"))
}

// withRemoteMessage adds the first line of the NameNode's message to an
// error from it: the Go client's text names only the exception's class
// (java.io.IOException), which does not say what went wrong.
func withRemoteMessage(err error) error {
	var remote hdfs.Error
	if !errors.As(err, &remote) || remote.Message() == "" {
		return err
	}
	msg, _, _ := strings.Cut(remote.Message(), "\n")
	return fmt.Errorf("%w: %s", err, msg)
}

func (r *remoteFS) file(w *hdfs.FileWriter) (hdfsFile, error) {
	deadline := time.Now().Add(r.timeout)
	if err := w.SetDeadline(deadline); err != nil {
		_ = w.Close()
		return nil, err
	}
	return &remoteFile{w: w, deadline: deadline}, nil
}

func (r *remoteFS) Rename(from, to string) error {
	// The client's rename overwrites; a final name is never reused.
	if _, err := r.c.Stat(to); err == nil {
		return &os.PathError{Op: "rename", Path: to, Err: os.ErrExist}
	}
	return r.c.Rename(from, to)
}

func (r *remoteFS) MkdirAll(dir string) error { return r.c.MkdirAll(dir, 0o755) }

func (r *remoteFS) Truncate(path string, size int64) error {
	done, err := r.c.Truncate(path, size)
	if err == nil && !done {
		return fmt.Errorf("truncate %s: %w", path, errTruncateRecovering)
	}
	return err
}

func (r *remoteFS) Stat(path string) (int64, bool, error) {
	fi, err := r.c.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return fi.Size(), true, nil
}

// RecoverLease tries each NameNode (a standby refuses) until one closes the
// file, waiting up to a minute for the recovery of its last block.
func (r *remoteFS) RecoverLease(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var err error
	for _, a := range r.addrs {
		if err = waitLeaseRecovered(ctx, a, r.user, path); err == nil {
			return nil
		}
	}
	return err
}

func (r *remoteFS) Remove(path string) error { return r.c.Remove(path) }

func (r *remoteFS) Close() error { return r.c.Close() }

type remoteFile struct {
	w        *hdfs.FileWriter
	deadline time.Time
}

func (f *remoteFile) Write(p []byte) (int, error) { return f.w.Write(p) }

// Close waits for the DataNodes' acks and the NameNode's complete. While
// the NameNode answers that the last block is still being reported
// (ErrReplicating: the data is acked, the file not yet complete) it tries
// again, backing off as Hadoop's client does, until the call's deadline.
func (f *remoteFile) Close() error {
	wait := 10 * time.Millisecond
	for {
		err := f.w.Close()
		if !hdfs.IsErrReplicating(err) || time.Now().Add(wait).After(f.deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

// localFS is file:// paths, through fsutil (fsync, directory sync).
type localFS struct{ fs fsutil.FS }

func (l localFS) Create(path string) (hdfsFile, error) {
	f, err := l.fs.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	// The new name must survive a crash along with the data synced into it.
	if err := l.fs.SyncDir(filepath.Dir(path)); err != nil {
		_ = f.Close()
		return nil, err
	}
	return localFile{f}, nil
}

func (l localFS) Append(path string) (hdfsFile, error) {
	f, err := l.fs.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return localFile{f}, nil
}

func (l localFS) Rename(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return &os.PathError{Op: "rename", Path: to, Err: os.ErrExist}
	}
	if err := l.fs.Rename(from, to); err != nil {
		return err
	}
	// The final name must survive a crash.
	return l.fs.SyncDir(filepath.Dir(to))
}

func (l localFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (l localFS) Truncate(path string, size int64) error { return os.Truncate(path, size) }

func (l localFS) Stat(path string) (int64, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return fi.Size(), true, nil
}

// RecoverLease: local files have no leases. (Nor a length that excludes the
// torn tail of a crash mid-batch: on file:// paths recovery renames the
// file as it is.)
func (l localFS) RecoverLease(context.Context, string) error { return nil }

func (l localFS) Remove(path string) error { return l.fs.Remove(path) }

func (l localFS) Close() error { return nil }

type localFile struct{ f fsutil.File }

func (f localFile) Write(p []byte) (int, error) { return f.f.Write(p) }

// Close fsyncs, then closes: the batch is on disk when it returns.
func (f localFile) Close() error {
	if err := f.f.Sync(); err != nil {
		_ = f.f.Close()
		return err
	}
	return f.f.Close()
}
