package pipeline

import (
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MinInterval is the shortest interval a schedule may have.
const MinInterval = time.Minute

// Schedule says when a pipeline runs by itself: every N minutes or hours
// (aligned to the clock: every 15m runs at :00, :15, :30, :45), on a cron
// expression (five fields, UTC), or never (manual). Its text form is
// "manual", "every 15m" or "cron 0 */6 * * *"; it implements River's
// PeriodicSchedule.
type Schedule struct {
	Every time.Duration
	Cron  string
	spec  cron.Schedule
}

// Manual is a pipeline that runs only when asked.
var Manual = Schedule{}

// ParseSchedule reads a schedule's text form. A bare duration ("15m") is
// read as "every 15m", the config file's older form.
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "manual":
		return Manual, nil
	case strings.HasPrefix(s, "cron "), strings.HasPrefix(s, "cron:"):
		expr := strings.TrimSpace(s[5:])
		spec, err := cron.ParseStandard(expr)
		if err != nil {
			return Schedule{}, fieldErr("schedule", s, "is not a cron expression (%v): use five fields, minute hour day month weekday, e.g. \"cron 0 */6 * * *\"", err)
		}
		return Schedule{Cron: expr, spec: spec}, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(s, "every ")))
	if err != nil {
		return Schedule{}, fieldErr("schedule", s, "is not a schedule: use \"every 15m\", \"every 2h\", \"cron 0 * * * *\" or \"manual\"")
	}
	sch := Schedule{Every: d}
	return sch, sch.validate()
}

// MustSchedule is ParseSchedule for constants; it panics on a bad schedule.
func MustSchedule(s string) Schedule {
	sch, err := ParseSchedule(s)
	if err != nil {
		panic(err)
	}
	return sch
}

func (s Schedule) validate() error {
	if s.Every != 0 && s.Every < MinInterval {
		return fieldErr("schedule", s.String(), "is too short: run at most every %s", MinInterval)
	}
	if s.Every != 0 && s.Cron != "" {
		return fieldErr("schedule", s.String(), "is both an interval and a cron expression: give one")
	}
	if s.Cron != "" && s.spec == nil {
		_, err := ParseSchedule("cron " + s.Cron)
		return err
	}
	return nil
}

// IsManual reports whether the pipeline runs only when asked.
func (s Schedule) IsManual() bool { return s.Every == 0 && s.Cron == "" }

// String is the schedule's text form.
func (s Schedule) String() string {
	switch {
	case s.Every != 0:
		return "every " + shortDuration(s.Every)
	case s.Cron != "":
		return "cron " + s.Cron
	}
	return "manual"
}

// shortDuration prints 15m rather than 15m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Next is the first run time strictly after t (the far future for manual).
func (s Schedule) Next(t time.Time) time.Time {
	switch {
	case s.Every != 0:
		return t.Truncate(s.Every).Add(s.Every)
	case s.Cron != "":
		spec := s.spec
		if spec == nil {
			var err error
			if spec, err = cron.ParseStandard(s.Cron); err != nil {
				return never
			}
		}
		return spec.Next(t.UTC())
	}
	return never
}

// never is Next of a manual schedule.
var never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// MarshalText writes the text form.
func (s Schedule) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the text form.
func (s *Schedule) UnmarshalText(b []byte) error {
	v, err := ParseSchedule(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
