// Package all registers every destination scheme: import it for its side
// effects (sqlite://, postgres://, mysql://, csv://, jsonl://, parquet://).
package all

import (
	_ "github.com/stripeline/stripeline/internal/dest/files"    // csv://, jsonl://, parquet://
	_ "github.com/stripeline/stripeline/internal/dest/mysql"    // mysql://
	_ "github.com/stripeline/stripeline/internal/dest/postgres" // postgres://, postgresql://
	_ "github.com/stripeline/stripeline/internal/dest/sqlite"   // sqlite://
)
