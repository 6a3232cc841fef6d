package main

import (
	"fmt"
	"time"

	"github.com/flumed/flumed/internal/e2e"
)

// report stops the writer, waits for the last lines, and prints where every
// line landed, step by step, and the timings gathered on the way.
func (d *demo) report() error {
	if err := d.w.Stop(); err != nil {
		return err
	}
	n := d.w.Written()
	if len(d.phases) > 0 {
		d.phases[len(d.phases)-1].end = n + 1
	}
	if err := d.delivered(20 * time.Second); err != nil {
		return err
	}
	fmt.Printf("\n[%s] ==> WHERE EVERY LINE OF app.log LANDED (%d lines)\n\n", d.elapsed(), n)
	row := func(name, title string, c []int) {
		fmt.Printf("  %-7s %-52s %6d %11d %11d %9d %7d %8d\n", name, title, c[0], c[1], c[2], c[3], c[4], c[5])
	}
	fmt.Printf("  %-7s %-52s %6s %11s %11s %9s %7s %8s\n", "", "", "", "first at", "first at", "printed", "extra", "")
	fmt.Printf("  %-7s %-52s %6s %11s %11s %9s %7s %8s\n", "written", "", "lines", "collector1", "collector2", "2+ times", "copies", "nowhere")
	total := make([]int, 6)
	for _, ph := range d.phases {
		if ph.end <= ph.from {
			continue
		}
		c := make([]int, 6) // lines, first at c1, first at c2, printed 2+ times, extra copies, nowhere
		for seq := ph.from; seq < ph.end; seq++ {
			first, times := d.ledger.Where(seq)
			c[0]++
			switch first {
			case "collector1":
				c[1]++
			case "collector2":
				c[2]++
			default:
				c[5]++
			}
			if times > 1 {
				c[3]++
				c[4] += times - 1
			}
		}
		row(ph.name, d.title(ph.name), c)
		for i := range total {
			total[i] += c[i]
		}
	}
	row("total", "", total)
	fmt.Println()
	fmt.Println("  A line is counted in the step during which the writer appended it; it may be printed")
	fmt.Println("  later (the last lines before a kill wait in the agent's channel). Extra copies are")
	fmt.Println("  printings beyond the first: exec's re-read of app.log at the agent's restart (step 5),")
	fmt.Println("  and a batch in flight at a kill. Nowhere: lines no collector printed. The collectors")
	fmt.Println("  run the exercise's memory channel, so events a collector acknowledged but had not")
	fmt.Println("  printed yet die with it: collectors in production want a file channel too.")
	if total[5] > 0 {
		t := d.ledger.Tally(1, n)
		fmt.Printf("  Lines printed nowhere: %s\n", e2e.Ranges(t.Missing))
	}
	fmt.Println()
	for _, r := range d.results {
		fmt.Printf("  %s\n", r)
	}
	return nil
}

// title is a step's title for the table.
func (d *demo) title(step string) string {
	return map[string]string{
		"step 1": "everything up",
		"step 2": "collector1 dead",
		"step 3": "collector1 back (failback after its penalty)",
		"step 4": "both collectors dead (held in the agent's channel)",
		"step 5": "agent crashed and restarted (exec re-reads app.log)",
		"step 6": "collector2 alone drains the channel",
		"step 7": "collector1 back, takes over",
		"step 8": "taildir agent, crashed and restarted",
	}[step]
}
