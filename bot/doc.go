// Package bot adapts nudgebot to Slack. It runs the Socket Mode loop
// (acknowledge first, then work), turns slash commands, button clicks and
// events into calls on the domain, delivers nudges by DM exactly once, and
// renders everything people see as Block Kit with their own text escaped.
//
// It talks to storage through the small Store interface declared here and
// to Slack through slack-go's real client; it never imports bbolt.
package bot
