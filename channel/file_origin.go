package channel

// The file channel's origin identity: the name under which the next hop
// records which of its sequence numbers it has committed (dedup_origins.go).
//
// Why not the log id. A next hop that has seen event n of an origin drops any
// later event n of that origin as a resend. So one identity must never see a
// sequence number given to two different events, and the log id does not
// promise that: a restart with no usable primary checkpoint (checkpointDir
// wiped, only the backup left, a version 1 slot) may number events from an
// older Next, and in interval mode (fsyncPerTransaction=false) records are
// taken and sent before they are synced, so a machine crash loses records the
// next hop has while Next goes back. Reused numbers under a known identity
// would make the next hop drop new events: a loss.
//
// So the identity lives in the checkpoint slot, beside Next, and is kept only
// when restart resumes from the primary checkpoint written by a run that made
// every record durable before a taker could see it (OriginDurable), and this
// run does the same. Anything else draws a new identity, written into the
// slot restart writes before any put or take: the next hop then puts a resend
// from before the restart again (duplicates, the state of every shipper), and
// never drops a new event.

var _ Originator = (*File)(nil)

// chooseOrigin sets f.origin for this run from the checkpoint restart
// resumes from (ck from source, as loadCheckpoint returned them).
func (f *File) chooseOrigin(ck *checkpoint, source string) {
	f.originDurable = f.opts.FsyncPerTransaction
	why := ""
	switch {
	case ck == nil || source != "checkpoint":
		why = "no primary checkpoint to resume from"
	case ck.Origin == OriginID{}:
		why = "the checkpoint has none (written by an older flumed)"
	case !ck.OriginDurable:
		why = "the last run synced at intervals: a machine crash may have taken back numbers it sent"
	case !f.originDurable:
		why = "fsyncPerTransaction is off: numbers are sent before they are synced"
	default:
		f.origin = ck.Origin
		return
	}
	f.origin = NewOriginID()
	f.log.Info("file channel: new origin identity: the next hop puts events resent from before this open again",
		"origin", f.origin.String(), "why", why)
}

// Origin returns the identity under which this channel's sequence numbers are
// unique for the next hop. It is set at open and never changes while open.
func (f *File) Origin() OriginID { return f.origin }
