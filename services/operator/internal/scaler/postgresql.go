package scaler

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// PostgreSQL pool settings. A poll runs one query; polls of the same
// scaler may overlap, so two connections suffice.
const (
	postgreSQLMaxConns       = 2
	postgreSQLConnectTimeout = 5 * time.Second
	postgreSQLMaxIdle        = 5 * time.Minute
)

// postgreSQLScaler runs a trigger's query through one connection pool kept
// for the scaler's life.
type postgreSQLScaler struct {
	cfg     *scalers.PostgreSQLConfig
	pool    *pgxpool.Pool
	address string
	redact  redactor
	closed  atomic.Bool
}

func newPostgreSQL(c *scalers.PostgreSQLConfig, _ Deps) (Scaler, error) {
	s := &postgreSQLScaler{cfg: c, redact: newRedactor(string(c.Password), string(c.Connection))}
	if c.Host != "" {
		s.address = net.JoinHostPort(c.Host, c.Port)
	}
	if c.Query == "" {
		return nil, s.errorf(ErrInvalidConfig, "no query")
	}
	pc, err := pgxpool.ParseConfig(string(c.Connection))
	if err != nil {
		// pgx's message holds the connection string, password masked; it
		// is cleaned again below, as every detail is.
		return nil, s.errorf(ErrInvalidConfig, "connection: %v", err)
	}
	cc := pc.ConnConfig
	s.redact = newRedactor(string(c.Password), string(c.Connection), cc.Password)
	s.address = net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))
	if cc.Database != "" {
		s.address += "/" + cc.Database
	}
	pc.MaxConns = postgreSQLMaxConns
	pc.MinConns = 0
	pc.MaxConnIdleTime = postgreSQLMaxIdle
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = postgreSQLConnectTimeout
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "ebb"
	}
	// The pool connects lazily: nothing is dialled before the first poll.
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, s.errorf(ErrInvalidConfig, "connection pool: %v", err)
	}
	s.pool = pool
	return s, nil
}

// Poll runs the query, as KEDA does, and reads the first column of the
// first row as a number: an integer or numeric exactly, a float exactly as
// printed, text when it is a number. No row, NULL, or a column of another
// type is a bad response. Active is the value strictly greater than
// activationTargetQueryValue.
func (s *postgreSQLScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	rows, err := s.pool.Query(ctx, s.cfg.Query)
	if err != nil {
		return Reading{}, s.queryError(ctx, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Reading{}, s.queryError(ctx, err)
		}
		return Reading{}, s.errorf(ErrBadResponse, "the query returned no row")
	}
	vals, err := rows.Values()
	if err != nil {
		return Reading{}, s.errorf(ErrBadResponse, "read the first row: %v", err)
	}
	if len(vals) == 0 {
		return Reading{}, s.errorf(ErrBadResponse, "the query returned no column")
	}
	v, err := postgreSQLValue(vals[0])
	if err != nil {
		return Reading{}, s.errorf(ErrBadResponse, "first column: %v", err)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Reading{}, s.queryError(ctx, err)
	}
	return Reading{Value: v.q, Active: v.f > s.cfg.ActivationTargetQueryValue}, nil
}

// postgreSQLValue converts a column value as pgx decodes it.
func postgreSQLValue(v any) (value, error) {
	switch x := v.(type) {
	case nil:
		return value{}, errors.New("NULL is not a number")
	case int64:
		return valueFromString(strconv.FormatInt(x, 10))
	case int32:
		return valueFromString(strconv.FormatInt(int64(x), 10))
	case int16:
		return valueFromString(strconv.FormatInt(int64(x), 10))
	case int8:
		return valueFromString(strconv.FormatInt(int64(x), 10))
	case uint32:
		return valueFromString(strconv.FormatUint(uint64(x), 10))
	case uint64:
		return valueFromString(strconv.FormatUint(x, 10))
	case float64:
		return floatValue(x, 64)
	case float32:
		return floatValue(float64(x), 32)
	case pgtype.Numeric:
		return numericValue(x)
	case string:
		v, err := valueFromString(x)
		if err != nil {
			return value{}, fmt.Errorf("%q is not a number", truncate(x, 64))
		}
		return v, nil
	default:
		return value{}, fmt.Errorf("a %T is not a number", v)
	}
}

func floatValue(f float64, bits int) (value, error) {
	v, err := valueFromString(strconv.FormatFloat(f, 'f', -1, bits))
	if err != nil {
		return value{}, fmt.Errorf("%v is not a finite number", f)
	}
	return v, nil
}

func numericValue(n pgtype.Numeric) (value, error) {
	switch {
	case !n.Valid:
		return value{}, errors.New("NULL is not a number")
	case n.NaN:
		return value{}, errors.New("NaN is not a number")
	case n.InfinityModifier != pgtype.Finite:
		return value{}, errors.New("an infinite numeric is not a finite number")
	}
	// Int × 10^Exp, written out in decimal.
	digits := new(big.Int).Set(n.Int).String()
	s := digits
	if n.Exp != 0 {
		s = digits + "e" + strconv.Itoa(int(n.Exp))
	}
	return valueFromString(s)
}

// queryError classifies a pgx error: the caller's context ending, a
// closed pool, an error reported by the server (bad response: a failed
// query, a refused login), a timeout, or a network failure.
func (s *postgreSQLScaler) queryError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	if s.closed.Load() {
		return s.errorf(ErrClosed, "")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return s.errorf(ErrBadResponse, "%v", err)
	}
	var netErr net.Error
	if pgconn.Timeout(err) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return s.errorf(ErrTimeout, "%v", err)
	}
	return s.errorf(ErrUnreachable, "%v", err)
}

func (s *postgreSQLScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = s.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: s.cfg.Type(), Source: s.address, Kind: kind, Detail: detail}
}

// Close closes the pool and its connections, waiting for running polls to
// give theirs back. It is idempotent.
func (s *postgreSQLScaler) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}
