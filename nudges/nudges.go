package nudges

import (
	"errors"
	"time"
)

// Role says which side of the work a nudge exercises. People alternate
// between leading and managing unless they chose a focus.
type Role string

const (
	RoleLead   Role = "lead"
	RoleManage Role = "manage"
	RoleBoth   Role = "both"
)

// Theme groups nudges by the idea they practise. The catalog validates
// every theme against Themes.
type Theme string

const (
	ThemeLeading      Theme = "leading"       // vision, purpose, culture, inspiring, the future
	ThemeManaging     Theme = "managing"      // plans, organising work, alignment with values and goals
	ThemeStrategy     Theme = "strategy"      // communicating strategy both ways
	ThemeGeneralist   Theme = "generalist"    // specialist to generalist
	ThemeIntegrator   Theme = "integrator"    // analyst to integrator
	ThemeStrategist   Theme = "strategist"    // tactician to strategist
	ThemeArchitect    Theme = "architect"     // bricklayer to architect
	ThemeAgendaSetter Theme = "agenda-setter" // problem-solver to agenda-setter
	ThemeDiplomat     Theme = "diplomat"      // warrior to diplomat
	ThemeLeadRole     Theme = "lead-role"     // supporting cast to lead role
	ThemeChange       Theme = "change"        // leading non-incremental change
	ThemeOrganisation Theme = "organisation"  // how the organisation is doing, told in the team's terms
	ThemeDeveloping   Theme = "developing"    // growing others: coaching, delegation, emerging leaders
	ThemeEveryLevel   Theme = "every-level"   // leadership from people without the title
	ThemeOwnLean      Theme = "own-lean"      // knowing whether you tend to manage or to lead
)

// Themes lists every theme in the order people see them.
var Themes = []ThemeInfo{
	{ThemeLeading, "Leading", "set direction, purpose and culture", false},
	{ThemeManaging, "Managing", "turn vision into plans and keep people aligned", false},
	{ThemeStrategy, "Communicating strategy", "explain where we are going and why, and carry questions back up", false},
	{ThemeOrganisation, "How the organisation is doing", "tell the team how things are going, in terms of their work", false},
	{ThemeDeveloping, "Developing others", "coach, delegate to grow people, and know when someone needs leading or managing", false},
	{ThemeEveryLevel, "Leadership at every level", "notice and back the people who lead without the title", false},
	{ThemeOwnLean, "Knowing your own lean", "see whether you tend to manage or to lead, and what your team misses", false},
	{ThemeGeneralist, "Specialist → generalist", "take the broad view and let others own the details", true},
	{ThemeIntegrator, "Analyst → integrator", "weave together what several disciplines know", true},
	{ThemeStrategist, "Tactician → strategist", "choose where to play, not only how to win today", true},
	{ThemeArchitect, "Bricklayer → architect", "design the system the work runs in", true},
	{ThemeAgendaSetter, "Problem-solver → agenda-setter", "decide which problems the team works on", true},
	{ThemeDiplomat, "Warrior → diplomat", "work with stakeholders beyond your own unit", true},
	{ThemeLeadRole, "Supporting cast → lead role", "step into the visible part of leading", true},
	{ThemeChange, "Leading change", "build the case, the coalition and the roadmap for real change", false},
}

// ThemeInfo names a theme for people.
type ThemeInfo struct {
	ID      Theme
	Title   string
	Summary string
	// Transition marks the seven shifts from managing to leading; a
	// focus on one of them starts that theme's arc.
	Transition bool
}

// LookupTheme returns the theme with the given id.
func LookupTheme(id Theme) (ThemeInfo, bool) {
	for _, t := range Themes {
		if t.ID == id {
			return t, true
		}
	}
	return ThemeInfo{}, false
}

// Nudge is one prompt from the catalog. It is comparable with ==. Show a
// nudge to a person through Words, which applies their situation and the
// strategy lines.
type Nudge struct {
	ID       string `yaml:"id" json:"id"`
	Role     Role   `yaml:"role" json:"role"`
	Theme    Theme  `yaml:"theme" json:"theme"`
	Prompt   string `yaml:"prompt" json:"prompt"`     // one concrete thing to do today, ≤ 200 characters
	Why      string `yaml:"why" json:"why"`           // the payoff or the evidence, in one line
	Question string `yaml:"question" json:"question"` // the reflection question

	// Needs are the situations the prompt assumes. A nudge with needs
	// carries a Fallback (how to do it without them), or is ContextOnly:
	// chosen only for people who said they have every one.
	Needs       ContextSet `yaml:"needs" json:"needs,omitempty"`
	Fallback    string     `yaml:"fallback" json:"fallback,omitempty"`
	ContextOnly bool       `yaml:"context_only" json:"context_only,omitempty"`

	// Say is a short opening line for a nudge about a conversation,
	// shown as "Try saying: …".
	Say string `yaml:"say" json:"say,omitempty"`

	// StrategyPrompt replaces Prompt when admins have set strategy lines;
	// StrategyPlaceholder marks where one line is quoted.
	StrategyPrompt string `yaml:"strategy_prompt" json:"strategy_prompt,omitempty"`
}

// Outcome is what a person did with a delivered nudge.
type Outcome string

const (
	OutcomeNone      Outcome = ""
	OutcomeDone      Outcome = "done"
	OutcomeSnoozed   Outcome = "snoozed"
	OutcomeSkipped   Outcome = "skipped"
	OutcomeReflected Outcome = "reflected"
	OutcomeNotForMe  Outcome = "not_for_me"
	OutcomeHelpful   Outcome = "helpful" // feedback after acting: raises the theme like done
)

// DeliveryState tracks a delivery through the outbox. A delivery is
// recorded as pending in the same transaction that advances the person's
// due time; it becomes sent once Slack has the message. A delivery left
// pending by a crash is uncertain: it is reconciled against the DM's
// history before anything is sent again.
type DeliveryState string

const (
	StatePending DeliveryState = "pending"
	StateSent    DeliveryState = "sent"
	StateMissed  DeliveryState = "missed" // the slot passed while the bot was down, beyond catch-up
	StateFailed  DeliveryState = "failed" // Slack refused it for good (e.g. user_not_found)
)

// Delivery is one nudge for one person in one slot. Its ID is derived
// from the person and the slot, so the same slot can never be delivered
// twice.
type Delivery struct {
	ID       string        `json:"id"`
	UserID   string        `json:"user_id"`
	NudgeID  string        `json:"nudge_id"`
	Theme    Theme         `json:"theme"`
	Role     Role          `json:"role"`
	Slot     time.Time     `json:"slot"`             // the scheduled instant (UTC)
	Reason   string        `json:"reason,omitempty"` // why this nudge was picked, shown in one line
	Manual   bool          `json:"manual,omitempty"` // from /nudge now; does not count for streaks
	State    DeliveryState `json:"state"`
	Round    int           `json:"round,omitempty"`   // bumped by each snooze: a snoozed nudge is sent again as a new message
	Attempts int           `json:"attempts"`          // post attempts in this round; >0 means Slack may already have it
	TryAt    time.Time     `json:"try_at,omitzero"`   // when the latest attempt started, for reconciliation
	Channel  string        `json:"channel,omitempty"` // DM channel id once known
	TS       string        `json:"ts,omitempty"`      // Slack message timestamp once sent
	Created  time.Time     `json:"created"`
	SentAt   time.Time     `json:"sent_at,omitzero"`
	Outcome  Outcome       `json:"outcome,omitempty"`
	ActedAt  time.Time     `json:"acted_at,omitzero"`
	SnoozeTo time.Time     `json:"snooze_to,omitzero"`
	Feedback Outcome       `json:"feedback,omitempty"` // helpful or not_for_me, given after the outcome
}

// DeliveryStart is one planned delivery, to be recorded together with
// the step it moves its subscriber on: Delivery is the new record,
// ExpectNextDue the due time it was planned from, and Advance (nil for
// none) changes the subscriber. Advance may run more than once, each time
// on a fresh copy of the stored subscriber, so it must only change that.
type DeliveryStart struct {
	Delivery      Delivery
	ExpectNextDue time.Time
	Advance       func(*Subscriber) error
}

// Subscriber is everything nudgebot keeps about one person's nudges.
type Subscriber struct {
	UserID       string    `json:"user_id"`
	Subscribed   bool      `json:"subscribed"`
	SubscribedAt time.Time `json:"subscribed_at,omitzero"`

	// ProfileTZ comes from the Slack profile and is refreshed daily;
	// TZOverride is set with /nudge tz and wins when present.
	ProfileTZ  string `json:"profile_tz,omitempty"`
	TZOverride string `json:"tz_override,omitempty"`

	// Time ("HH:MM") and Days override the default schedule's time and
	// weekdays; empty means the configured default.
	Time string   `json:"time,omitempty"`
	Days Weekdays `json:"days,omitempty"`

	Focus       string    `json:"focus,omitempty"` // "", lead, manage, both, or a theme id
	PausedUntil time.Time `json:"paused_until,omitzero"`

	// Inactive is set when Slack says the person is gone (deactivated,
	// user_not_found, cannot_dm_bot). Their schedule stops; data stays.
	Inactive       bool   `json:"inactive,omitempty"`
	InactiveReason string `json:"inactive_reason,omitempty"`

	DMChannel string `json:"dm_channel,omitempty"` // the IM channel id, so conversations.open runs once

	NextDue  time.Time `json:"next_due,omitzero"`  // UTC; zero when not scheduled
	LastSlot time.Time `json:"last_slot,omitzero"` // the latest slot delivered or recorded missed

	// Contexts is what the person said applies to their work; the zero
	// value means they have not said yet.
	Contexts Situation `json:"contexts,omitzero"`
	// Arc is how far the person is along the arc of their focus theme.
	Arc ArcProgress `json:"arc,omitzero"`
	// TeamLean brings strategy and organisation nudges forward while the
	// person's team says its direction is unclear (from the last digest's
	// clarity pulse); it describes the team, never the person.
	TeamLean TeamLean `json:"team_lean,omitzero"`

	Streak   int                `json:"streak"`
	Seen     []string           `json:"seen,omitempty"`      // nudge ids delivered in the current cycle
	LastRole Role               `json:"last_role,omitempty"` // for alternating lead and manage
	Stats    map[Theme]BetaStat `json:"stats,omitempty"`     // feedback per theme
}

// BetaStat is the feedback on one theme as a Beta distribution's
// parameters: successes (done, helpful) and failures (skip, not for me).
type BetaStat struct {
	Up   float64 `json:"up"`
	Down float64 `json:"down"`
}

// Location is the person's effective time zone: the override, else the
// profile's, else fallback.
func (s Subscriber) Location(fallback *time.Location) *time.Location {
	for _, name := range []string{s.TZOverride, s.ProfileTZ} {
		if name == "" || name == "Local" {
			continue // "Local" would mean the server's zone, never the person's
		}
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return fallback
}

// Weekdays is a set of days of the week, bit i for time.Weekday(i).
// Zero means "not set".
type Weekdays uint8

// FormTime and FormDays are what a settings form proposes to someone who
// has not chosen their own time or days: a working morning.
const (
	FormTime = "09:00"
	FormDays = Weekdays(1<<time.Monday | 1<<time.Tuesday | 1<<time.Wednesday | 1<<time.Thursday | 1<<time.Friday)
)

// FormSettings are the time and days a settings form starts from: the
// person's own, or FormTime and FormDays where they chose none.
func (s Subscriber) FormSettings() (clock string, days Weekdays) {
	clock, days = s.Time, s.Days
	if clock == "" {
		clock = FormTime
	}
	if days == 0 {
		days = FormDays
	}
	return clock, days
}

// Has reports whether d is in the set.
func (w Weekdays) Has(d time.Weekday) bool { return w&(1<<uint(d)) != 0 }

// With returns the set with d added.
func (w Weekdays) With(d time.Weekday) Weekdays { return w | 1<<uint(d) }

// Errors the domain returns; adapters wrap them with context.
var (
	ErrNotFound        = errors.New("not found")
	ErrInvalidSchedule = errors.New("invalid schedule")
	ErrInvalidCatalog  = errors.New("invalid catalog")
)
