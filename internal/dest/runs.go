package dest

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// ScanRuns reads run records from rows selecting (id, pipeline, started,
// finished, status, streams, error), with times stored as text in layout.
// It is shared by the SQL destinations that keep times as text.
func ScanRuns(rows *sql.Rows, layout string) ([]Run, error) {
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var started string
		var finished, streams, errText sql.NullString
		if err := rows.Scan(&r.ID, &r.Pipeline, &started, &finished, &r.Status, &streams, &errText); err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		r.Started, _ = time.Parse(layout, started)
		if finished.Valid {
			r.Finished, _ = time.Parse(layout, finished.String)
		}
		if streams.Valid {
			r.Streams = json.RawMessage(streams.String)
		}
		r.Error = errText.String
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}
