package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// pool is a small bounded connection pool: the destination needs a few
// connections for concurrent stream writers, not a general-purpose pool.
type pool struct {
	cfg   *pgx.ConnConfig
	idle  chan *pgx.Conn
	slots chan struct{}
}

func newPool(cfg *pgx.ConnConfig, size int) *pool {
	return &pool{cfg: cfg, idle: make(chan *pgx.Conn, size), slots: make(chan struct{}, size)}
}

// get returns an idle connection, opens a new one while under the limit,
// or waits for one to come back.
func (p *pool) get(ctx context.Context) (*pgx.Conn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case p.slots <- struct{}{}:
		c, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put returns a connection; a broken one is closed and its slot freed.
func (p *pool) put(c *pgx.Conn) {
	if c.IsClosed() || c.PgConn().IsBusy() || c.PgConn().TxStatus() != 'I' {
		c.Close(context.Background())
		<-p.slots
		return
	}
	p.idle <- c
}

// close closes the idle connections.
func (p *pool) close() {
	for {
		select {
		case c := <-p.idle:
			c.Close(context.Background())
			<-p.slots
		default:
			return
		}
	}
}
