package config

import (
	"fmt"
	"time"

	"github.com/nudgebot/nudgebot/nudges"
	"github.com/nudgebot/nudgebot/nudges/cronspec"
)

// checkSchedule reports a spec nudges cannot run; cronspec.Parse's
// error already quotes the spec and says how to fix it. A digest has its
// own timezone key, so a CRON_TZ= pin there would be a second, conflicting
// answer to the same question.
func checkSchedule(o *origin, p *problems, path, spec string, digest bool) {
	s, err := cronspec.Parse(spec)
	if err != nil {
		p.addf("%s: %v", o.at(path), err)
		return
	}
	if digest && s.Location() != nil {
		p.addf("%s: %q pins its own time zone: remove the CRON_TZ= (or TZ=) prefix and set the digest's timezone instead", o.at(path), spec)
	}
}

// Calendar returns the nudges.Calendar the configuration describes. Call
// it on a Config that Load, Parse or Validate accepted.
func (c Config) Calendar() (nudges.Calendar, error) {
	sched, err := cronspec.Parse(c.Nudges.Schedule)
	if err != nil {
		return nudges.Calendar{}, fmt.Errorf("nudges.schedule: %w", err)
	}
	fallback, err := time.LoadLocation(c.Nudges.DefaultTimezone)
	if err != nil {
		return nudges.Calendar{}, fmt.Errorf("nudges.default_timezone: %w", err)
	}
	catchUp := c.Nudges.CatchUp
	if catchUp == 0 {
		// In the config 0 means "never catch up", but nudges reads a zero
		// window as its default; the shortest window is the same as none.
		catchUp = time.Nanosecond
	}
	return nudges.Calendar{
		Default:  sched,
		Holidays: c.Holidays,
		CatchUp:  catchUp,
		Fallback: fallback,
		Zones:    &nudges.ZoneCache{},
	}, nil
}
