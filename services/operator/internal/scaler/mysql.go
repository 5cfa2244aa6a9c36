package scaler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"k8s.io/klog/v2"

	"github.com/ebb-autoscaler/ebb/pkg/scalers"
)

// MySQL pool settings, unless the trigger sets maxOpenConns, maxIdleConns
// or connMaxIdleTime. A poll runs one query; polls of the same scaler may
// overlap, so two connections suffice.
const (
	mySQLMaxOpenConns   = 2
	mySQLConnectTimeout = 5 * time.Second
	mySQLMaxIdle        = 5 * time.Minute
)

// mySQLScaler runs a trigger's query through one database/sql pool kept
// for the scaler's life.
type mySQLScaler struct {
	cfg     *scalers.MySQLConfig
	db      *sql.DB
	address string
	redact  redactor
	closed  atomic.Bool
}

func newMySQL(c *scalers.MySQLConfig, deps Deps) (Scaler, error) {
	s := &mySQLScaler{cfg: c, redact: newRedactor(string(c.Password), string(c.ConnectionString))}
	if c.Host != "" && c.ConnectionString == "" {
		s.address = net.JoinHostPort(c.Host, c.Port)
	}
	if c.Query == "" {
		return nil, s.errorf(ErrInvalidConfig, "no query")
	}
	var mc *mysql.Config
	if c.ConnectionString != "" {
		var err error
		if mc, err = mysql.ParseDSN(string(c.ConnectionString)); err != nil {
			return nil, s.errorf(ErrInvalidConfig, "connectionString: %v", err)
		}
	} else {
		// The DSN KEDA builds from the separate settings.
		mc = mysql.NewConfig()
		mc.Net = "tcp"
		mc.Addr = net.JoinHostPort(c.Host, c.Port)
		mc.User = c.Username
		mc.Passwd = string(c.Password)
		mc.DBName = c.DBName
	}
	s.redact = newRedactor(string(c.Password), string(c.ConnectionString), mc.Passwd)
	s.address = mc.Addr
	if mc.Net != "" && mc.Net != "tcp" {
		s.address = mc.Net + "(" + mc.Addr + ")"
	}
	if mc.DBName != "" {
		s.address += "/" + mc.DBName
	}
	if mc.Timeout == 0 {
		mc.Timeout = mySQLConnectTimeout
	}
	// The driver logs to stderr by default; its messages (a bad idle
	// connection closed, a broken packet) go to the operator's log at
	// verbosity 2 instead, secrets removed. The failures they describe
	// also show as failed polls.
	mc.Logger = mySQLLogger{logger: deps.Logger.WithName("mysql"), redact: s.redact}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, s.errorf(ErrInvalidConfig, "connection: %v", err)
	}
	// OpenDB dials nothing: the first poll connects.
	s.db = sql.OpenDB(connector)
	maxOpen, maxIdle := mySQLMaxOpenConns, mySQLMaxOpenConns
	if c.MaxOpenConns > 0 {
		maxOpen = int(min(c.MaxOpenConns, 1<<16))
		maxIdle = maxOpen
	}
	if c.MaxIdleConns > 0 {
		maxIdle = int(min(c.MaxIdleConns, 1<<16))
	}
	idle := mySQLMaxIdle
	if c.ConnMaxIdleTimeSeconds > 0 {
		idle = time.Duration(min(c.ConnMaxIdleTimeSeconds, int64(24*time.Hour/time.Second))) * time.Second
	}
	s.db.SetMaxOpenConns(maxOpen)
	s.db.SetMaxIdleConns(maxIdle)
	s.db.SetConnMaxIdleTime(idle)
	return s, nil
}

// mySQLLogger is the driver's logging interface over klog.
type mySQLLogger struct {
	logger klog.Logger
	redact redactor
}

// Print logs the driver's message.
func (l mySQLLogger) Print(v ...any) {
	if l.logger.V(2).Enabled() {
		l.logger.V(2).Info("MySQL driver", "msg", l.redact.clean(strings.TrimSpace(fmt.Sprintln(v...))))
	}
}

// Poll runs the query, as KEDA does, and reads the first column of the
// first row as a number: an integer or a decimal exactly, a float exactly
// as printed, text when it is a number. No row, NULL, or a value of
// another kind is a bad response. Active is the value strictly greater
// than activationQueryValue.
func (s *mySQLScaler) Poll(ctx context.Context) (Reading, error) {
	if s.closed.Load() {
		return Reading{}, s.errorf(ErrClosed, "")
	}
	rows, err := s.db.QueryContext(ctx, s.cfg.Query)
	if err != nil {
		return Reading{}, s.queryError(ctx, err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return Reading{}, s.queryError(ctx, err)
	}
	if len(cols) == 0 {
		return Reading{}, s.errorf(ErrBadResponse, "the query returned no column")
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Reading{}, s.queryError(ctx, err)
		}
		return Reading{}, s.errorf(ErrBadResponse, "the query returned no row")
	}
	dest := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return Reading{}, s.errorf(ErrBadResponse, "read the first row: %v", err)
	}
	v, err := mySQLValue(dest[0])
	if err != nil {
		return Reading{}, s.errorf(ErrBadResponse, "first column: %v", err)
	}
	if err := rows.Close(); err != nil {
		return Reading{}, s.queryError(ctx, err)
	}
	if err := rows.Err(); err != nil {
		return Reading{}, s.queryError(ctx, err)
	}
	return Reading{Value: v.q, Active: v.f > s.cfg.ActivationQueryValue}, nil
}

// mySQLValue converts a column value as the driver returns it: int64 or
// uint64 for integer columns, float32 or float64 for FLOAT and DOUBLE,
// bytes for DECIMAL and text, time.Time for dates with parseTime.
func mySQLValue(v any) (value, error) {
	switch x := v.(type) {
	case nil:
		return value{}, errors.New("NULL is not a number")
	case int64:
		return valueFromString(strconv.FormatInt(x, 10))
	case uint64:
		return valueFromString(strconv.FormatUint(x, 10))
	case float64:
		return floatValue(x, 64)
	case float32:
		return floatValue(float64(x), 32)
	case []byte:
		v, err := valueFromString(string(x))
		if err != nil {
			return value{}, fmt.Errorf("%q is not a number", truncate(string(x), 64))
		}
		return v, nil
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

// queryError classifies a driver error: the caller's context ending, a
// closed pool, an error reported by the server (bad response: a failed
// query, a refused login), a timeout, or a network failure.
func (s *mySQLScaler) queryError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		e := s.errorf(ErrUnreachable, "poll cancelled: %v", ctxErr)
		e.ctxErr = ctxErr
		return e
	}
	if s.closed.Load() {
		return s.errorf(ErrClosed, "")
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return s.errorf(ErrBadResponse, "%v", err)
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return s.errorf(ErrTimeout, "%v", err)
	}
	return s.errorf(ErrUnreachable, "%v", err)
}

func (s *mySQLScaler) errorf(kind error, format string, args ...any) *Error {
	detail := ""
	if format != "" {
		detail = s.redact.clean(fmt.Sprintf(format, args...))
	}
	return &Error{Type: s.cfg.Type(), Source: s.address, Kind: kind, Detail: detail}
}

// Close closes the pool and its connections. It is idempotent.
func (s *mySQLScaler) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.db.Close()
}
