package cli

import (
	"context"

	"github.com/stripeline/stripeline/internal/pipeline"
)

// runWorker is serve --worker: River workers on the control store, with
// the schedules (any worker may be River's leader, which inserts the
// periodic jobs and rescues the jobs of dead workers), and no listener.
// Several such processes on one PostgreSQL store share the runs and the
// fleet accounts' jobs.
func (a *App) runWorker(ctx context.Context, f *serveFlags) error {
	if f.rescue <= 0 {
		return usagef("--rescue-after %s: give a positive duration, e.g. 6h", f.rescue)
	}
	svc, err := a.openService(ctx, f.store, pipeline.Options{Work: true, Schedules: true, Workers: f.workers, RescueAfter: f.rescue})
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := a.applyConfigPipelines(ctx, svc); err != nil {
		return err
	}
	if err := svc.Start(context.WithoutCancel(ctx)); err != nil {
		return a.pipelineErr(err)
	}
	a.Logger().Info("working", "store", svc.StoreURL(), "workers", f.workers, "worker", svc.WorkerID())
	<-ctx.Done()
	a.Logger().Info("shutting down: running syncs finish or stop at their checkpoint", "grace", f.grace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.grace)
	defer cancel()
	return svc.Stop(sctx)
}
