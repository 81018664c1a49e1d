// Package bot is nudgebot's Slack adapter. It runs the Socket Mode loop
// (acknowledge first, then work), parses slash commands, button clicks,
// forms and events into calls on the core (package app), and renders the
// core's answers as Block Kit with people's own text escaped. It is also
// the core's Messenger: the Slack client the core posts nudges, digests
// and pulses through, with Slack's rate limits and errors handled.
//
// The rules, and when things are due, are the core's: bot decides
// neither. It starts the core's scheduler when it runs (Options.Scheduler)
// and stops it on shutdown, and it talks to storage only through the
// small HandledEnvelopes interface declared here; it never imports bbolt
// or a cron package.
package bot
