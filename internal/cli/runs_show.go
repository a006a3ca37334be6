package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"text/tabwriter"

	"github.com/stripeline/stripeline/internal/engine"
	"github.com/stripeline/stripeline/internal/twoway"
)

// replicaRunID is the shape of the engine's run ids.
var replicaRunID = regexp.MustCompile(`^\d{8}T\d{6}Z-[0-9a-f]+$`)

func isReplicaRunID(s string) bool { return replicaRunID.MatchString(s) }

// replicaRecord is the streams JSON of a replica's run record.
type replicaRecord struct {
	Streams []*engine.StreamResult `json:"streams"`
	Notes   []string               `json:"notes"`
	Events  int                    `json:"events_applied"`
	TwoWay  *twoway.Report         `json:"two_way,omitempty"`
}

// showReplicaRun prints one run of the replica's _stripeline_runs.
func (a *App) showReplicaRun(ctx context.Context, dstFlag, id string) error {
	dst, err := a.openDest(ctx, a.destURL(dstFlag))
	if err != nil {
		return err
	}
	defer dst.Close()
	runs, err := dst.Runs(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("read run history: %w", err)
	}
	for _, r := range runs {
		if r.ID != id {
			continue
		}
		var rec replicaRecord
		if len(r.Streams) > 0 {
			if err := json.Unmarshal(r.Streams, &rec); err != nil {
				return fmt.Errorf("run %s: its record does not read: %w", id, err)
			}
		}
		if a.Format == "json" {
			return a.printJSON(map[string]any{"id": r.ID, "pipeline": r.Pipeline, "started": r.Started, "finished": r.Finished,
				"status": r.Status, "error": r.Error, "streams": rec.Streams, "notes": rec.Notes, "events_applied": rec.Events, "two_way": rec.TwoWay})
		}
		tw := tabwriter.NewWriter(a.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STREAM\tMODE\tROWS\tREQUESTS\tNOTE")
		for _, s := range rec.Streams {
			if s.Rows == 0 && s.Error == "" && s.Skipped == "" {
				continue
			}
			note := s.Error
			if note == "" {
				note = s.Skipped
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Stream, s.Mode, s.Rows, requestsCell(s.Requests), note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		secs := 0.0
		if !r.Finished.IsZero() {
			secs = r.Finished.Sub(r.Started).Seconds()
		}
		fmt.Fprintf(a.Stdout, "run %s of %s %s: %d events applied in %.1fs\n", r.ID, r.Pipeline, r.Status, rec.Events, secs)
		for _, n := range rec.Notes {
			fmt.Fprintln(a.Stdout, "note: "+n)
		}
		if rec.TwoWay != nil {
			writeTwoWayReport(a.Stdout, rec.TwoWay)
		}
		if r.Error != "" {
			fmt.Fprintln(a.Stdout, "error: "+r.Error)
		}
		return nil
	}
	return fmt.Errorf("no run %s in the replica's history (stripeline runs --dest URL lists them)", id)
}
