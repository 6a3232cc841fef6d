package main

import (
	"fmt"
	"time"

	"github.com/flumed/flumed/internal/e2e"
)

// maxPenalty is testdata/failover/agent.properties' maxpenalty.
const maxPenalty = 10 * time.Second

func (d *demo) step1() error {
	d.heading("step 1", "everything up: events go to collector1 (priority 10)")
	for _, p := range []*e2e.Proc{d.c1, d.c2, d.agent} {
		if err := d.startProc(p); err != nil {
			return err
		}
	}
	d.mu.Lock()
	d.echoLog = true
	d.mu.Unlock()
	d.note("A writer appends 20 numbered lines a second to app.log. The agent's exec source runs")
	d.note("`tail -F -n +1 app.log`, puts each line in a file channel, and the failover group g1")
	d.note("sends batches to k1 (collector1, priority 10) while it works, else k2 (collector2, priority 5).")
	d.note("The collectors print each event with Flume's logger sink:")
	d.w.Start()
	if err := d.watch(d.agent, 5*time.Second, nil); err != nil {
		return err
	}
	d.note("collector2 printed %d events: k2 stands by while k1 succeeds.", d.ledger.Total("collector2"))
	return nil
}

func (d *demo) step2() error {
	d.heading("step 2", "collector1 dies: the group fails over to collector2")
	killed := time.Now()
	if err := d.kill(d.c1); err != nil {
		return err
	}
	at, ok := d.acc2.WaitFirstAfter(d.ctx, killed, 30*time.Second)
	if !ok {
		return fmt.Errorf("collector2 received nothing within 30 s of collector1's death")
	}
	d.say("collector2 accepted its first events %.2f s after the kill.", at.Sub(killed).Seconds())
	d.note("k1's send failed, so the processor moved k1 to its dead list with a 2 s penalty and")
	d.note("retried the same batch (rolled back into the channel) on k2 in the same call. Most of")
	d.note("the wait is the sink runner's sleep: after an empty take it sleeps 1 s, as Flume's does.")
	d.result("failover: collector1 killed -> first event accepted by collector2: %.2f s", at.Sub(killed).Seconds())
	d.note("While collector1 is down, every retry of k1 fails and doubles its penalty (2 s, 4 s, 8 s, ...):")
	return d.watch(d.agent, 6*time.Second, nil)
}

func (d *demo) step3() error {
	d.heading("step 3", "collector1 comes back: after its penalty, the agent fails back")
	d.note("There is no health check: k1 is retried with real events when its penalty expires")
	d.note("(capped by maxpenalty = %s), and the first success makes it the active sink again.", maxPenalty)
	up := time.Now()
	if err := d.startProc(d.c1); err != nil {
		return err
	}
	at, ok := d.acc1.WaitFirstAfter(d.ctx, up, maxPenalty+20*time.Second)
	if !ok {
		return fmt.Errorf("collector1 received nothing within %s of its restart", maxPenalty+20*time.Second)
	}
	d.say("collector1 accepted events again %.2f s after its restart.", at.Sub(up).Seconds())
	d.result("failback: collector1 restarted -> first event accepted by it: %.2f s (maxpenalty %s)", at.Sub(up).Seconds(), maxPenalty)
	time.Sleep(time.Second)
	settled := time.Now()
	if err := d.watch(d.agent, 3*time.Second, nil); err != nil {
		return err
	}
	d.note("Since then collector2 accepted %d events and collector1 %d.", d.acc2.Since(settled), d.acc1.Since(settled))
	return nil
}

func (d *demo) step4() error {
	d.heading("step 4", "both collectors die: the events wait in the agent's file channel")
	d.bothDead = d.w.Written()
	if err := d.kill(d.c1); err != nil {
		return err
	}
	if err := d.kill(d.c2); err != nil {
		return err
	}
	d.note("No sink can deliver; the channel (capacity 1,000,000, on disk) keeps every line:")
	return d.watch(d.agent, 5*time.Second, nil)
}

func (d *demo) step5() error {
	d.heading("step 5", "the agent itself crashes and restarts")
	held := d.channelSize(d.agent)
	if err := d.kill(d.agent); err != nil {
		return err
	}
	d.note("The channel held %d events. With Flume's memory channel they would be gone now;", held)
	d.note("flumed's file channel committed each of them to its write-ahead log before the source")
	d.note("was told OK. The writer keeps appending while the agent is down.")
	time.Sleep(2 * time.Second)
	if err := d.startProc(d.agent); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	m, err := d.agent.Metrics(d.ctx)
	if err != nil {
		return err
	}
	size, read := m.Int("CHANNEL.c1", "ChannelSize"), m.Int("SOURCE.r1", "EventAcceptedCount")
	d.say("The agent's channel holds %d events: the %d held before the crash, plus %d lines", size, size-read, read)
	d.note("its exec source has read since the restart. `tail -F -n +1` started over at the top")
	d.note("of app.log (%d lines long), so lines the collectors already printed are queued again", d.w.Written())
	d.note("and will be delivered twice. (Plain `tail -F` would instead re-read the last 10 lines")
	d.note("and skip what was written while the agent was down.) Step 8 shows taildir instead.")
	d.result("agent crash: %d held events survived; exec re-read %d lines from the top of app.log", size-read, read)
	return nil
}

func (d *demo) step6() error {
	d.heading("step 6", "collector2 starts alone and receives everything the agent held")
	held := d.w.Written()
	up := time.Now()
	if err := d.startProc(d.c2); err != nil {
		return err
	}
	at, ok := d.acc2.WaitFirstAfter(d.ctx, up, 30*time.Second)
	if !ok {
		return fmt.Errorf("collector2 received nothing within 30 s of its start")
	}
	d.say("collector2 accepted events %.2f s after its start.", at.Sub(up).Seconds())
	d.note("With every sink failing, the sink runner sleeps 5 s between attempts, and k2 is")
	d.note("tried again when its own penalty expires: whichever collector comes back first drains the channel.")
	d.result("collector2 alone after the crash -> first event accepted: %.2f s", at.Sub(up).Seconds())
	// Held: the lines written since both collectors died, up to now.
	all := func() bool {
		for seq := d.bothDead + 1; seq <= held; seq++ {
			if !d.ledger.Has("collector2", seq) {
				return false
			}
		}
		return true
	}
	if err := d.watch(d.agent, 60*time.Second, all); err != nil {
		return err
	}
	if !all() {
		return fmt.Errorf("collector2 did not print every held line within 60 s")
	}
	d.say("collector2 printed every one of the %d lines written since both collectors died.", held-d.bothDead)
	return nil
}

func (d *demo) step7() error {
	d.heading("step 7", "collector1 comes back and takes over again")
	up := time.Now()
	if err := d.startProc(d.c1); err != nil {
		return err
	}
	at, ok := d.acc1.WaitFirstAfter(d.ctx, up, maxPenalty+20*time.Second)
	if !ok {
		return fmt.Errorf("collector1 received nothing within %s of its restart", maxPenalty+20*time.Second)
	}
	d.say("collector1 accepted events again %.2f s after its restart.", at.Sub(up).Seconds())
	d.result("second failback: collector1 restarted -> first event accepted by it: %.2f s", at.Sub(up).Seconds())
	return d.watch(d.agent, 3*time.Second, nil)
}

func (d *demo) step8() error {
	d.w.Pause()
	d.heading("step 8", "exec versus taildir: the same agent crash with a taildir source")
	d.note("The writer pauses; once the collectors printed every line, the exec agent stops")
	d.note("(SIGTERM) and agent-taildir.properties takes over: the same channel type, group and")
	d.note("collectors, but a TAILDIR source that records its position after every batch.")
	if err := d.delivered(20 * time.Second); err != nil {
		return err
	}
	if err := d.agent.Terminate(10 * time.Second); err != nil {
		return err
	}
	d.say("The exec agent stopped.")
	if err := d.startProc(d.taildir); err != nil {
		return err
	}
	d.w.Resume()
	if err := d.watch(d.taildir, 3*time.Second, nil); err != nil {
		return err
	}
	if err := d.kill(d.taildir); err != nil {
		return err
	}
	before := d.w.Written()
	time.Sleep(2 * time.Second)
	down := d.w.Written() - before
	if err := d.startProc(d.taildir); err != nil {
		return err
	}
	if err := d.watch(d.taildir, 3*time.Second, nil); err != nil {
		return err
	}
	d.w.Pause()
	if err := d.delivered(20 * time.Second); err != nil {
		return err
	}
	ph := d.phases[len(d.phases)-1]
	t := d.ledger.Tally(ph.from, d.w.Written())
	d.say("taildir after its crash: %d lines were written while it was down; it read them all", down)
	d.note("(%d missing) and read %d lines a second time (at most the one batch in flight).", len(t.Missing), t.Duplicates)
	d.result("taildir crash: %d lines written while down, %d skipped, %d read twice", down, len(t.Missing), t.Duplicates)
	return nil
}

// delivered waits until every line written so far was printed by a
// collector (the writer should be paused).
func (d *demo) delivered(timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		n := d.w.Written()
		if t := d.ledger.Tally(1, n); len(t.Missing) == 0 {
			return nil
		}
		if time.Now().After(end) {
			t := d.ledger.Tally(1, n)
			d.note("after %s, %d of %d lines were printed by no collector: %s", timeout, len(t.Missing), n, e2e.Ranges(t.Missing))
			return nil
		}
		select {
		case <-d.ctx.Done():
			return d.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
