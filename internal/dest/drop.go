package dest

import "context"

// Dropper is implemented by destinations that can remove what a pipeline
// wrote: deleting a pipeline with its tables (the pipelines service) calls
// it. Both methods are idempotent: a table or pipeline that is not there
// is no error.
type Dropper interface {
	// DropTables drops the replica tables (or, for a file destination,
	// removes the tables' files) named by their stream names.
	DropTables(ctx context.Context, tables []string) error
	// DropPipeline removes a pipeline's bookkeeping: its _stripeline_state
	// rows, its _stripeline_runs rows and its lock record.
	DropPipeline(ctx context.Context, pipeline string) error
}
