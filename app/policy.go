package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Forbidden is the policy's refusal. Who says, in words for people, who
// may do what was refused.
type Forbidden struct {
	Who string
}

func (f *Forbidden) Error() string { return "not allowed: only " + f.Who }

// IsForbidden reports whether err is the policy's refusal.
func IsForbidden(err error) bool {
	_, ok := errors.AsType[*Forbidden](err)
	return ok
}

// The people a refusal names.
const (
	WhoOwner                   = "the person it belongs to"
	WhoChannelMembersAndAdmins = "members of that channel and the nudgebot admins"
	WhoAdmins                  = "the nudgebot admins named in the config"
	WhoChannelMembers          = "members of that channel"
)

// Resource is what an actor asks to see or change.
type Resource struct {
	kind    resourceKind
	owner   string
	channel string
}

type resourceKind int

const (
	kindOwn resourceKind = iota + 1
	kindChannel
	kindChannelMember
	kindAdmin
	kindClickable
)

// OwnedBy is a person's own data: their settings, nudges, reflections.
// Only they may see or change it; admins included, nobody else.
func OwnedBy(userID string) Resource { return Resource{kind: kindOwn, owner: userID} }

// ChannelFigures are a channel's team figures (its digest, running or
// posted): for its members and the admins.
func ChannelFigures(channel string) Resource { return Resource{kind: kindChannel, channel: channel} }

// ChannelPost is speaking in a channel in a person's name: for its
// members only.
func ChannelPost(channel string) Resource { return Resource{kind: kindChannelMember, channel: channel} }

// Clickable is an answer to a message Slack showed in a channel, such as
// the clarity pulse: Slack delivers such a click only from someone who
// can see the message, and asking Slack again on every click would spend
// the rate limits everyone shares, so any signed-in person may.
func Clickable(channel string) Resource { return Resource{kind: kindClickable, channel: channel} }

// AdminOperations are the company-wide switches and views.
func AdminOperations() Resource { return Resource{kind: kindAdmin} }

// members answers who is in a channel, asked of Slack at the time.
type members interface {
	Channel(ctx context.Context, channel string) (Channel, error)
}

// Policy is the one place that answers "may this person see or do
// this". Every use case asks it first.
type Policy struct {
	admins  []string
	members members
}

// NewPolicy builds the policy from the config's admins and a way to ask
// Slack who is in a channel.
func NewPolicy(admins []string, m members) Policy {
	return Policy{admins: slices.Clone(admins), members: m}
}

func (p Policy) isAdmin(userID string) bool {
	return userID != "" && slices.Contains(p.admins, userID)
}

// Authorize returns nil when the actor may act on r, a *Forbidden when
// not, or another error when Slack could not say who is in a channel.
func (p Policy) Authorize(ctx context.Context, a Actor, r Resource) error {
	if a.UserID == "" {
		return &Forbidden{Who: "people signed in to Slack"}
	}
	switch r.kind {
	case kindOwn:
		if r.owner != "" && a.UserID == r.owner {
			return nil
		}
		return &Forbidden{Who: WhoOwner}
	case kindClickable:
		return nil
	case kindAdmin:
		if p.isAdmin(a.UserID) {
			return nil
		}
		return &Forbidden{Who: WhoAdmins}
	case kindChannel, kindChannelMember:
		if r.kind == kindChannel && p.isAdmin(a.UserID) {
			return nil
		}
		ok, err := p.isMember(ctx, a.UserID, r.channel)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if r.kind == kindChannelMember {
			return &Forbidden{Who: WhoChannelMembers}
		}
		return &Forbidden{Who: WhoChannelMembersAndAdmins}
	}
	return &Forbidden{Who: "nobody"} // an unknown resource is never allowed
}

func (p Policy) isMember(ctx context.Context, userID, channel string) (bool, error) {
	if channel == "" || p.members == nil {
		return false, nil
	}
	ch, err := p.members.Channel(ctx, channel)
	if err != nil {
		return false, fmt.Errorf("asking Slack who is in the channel: %w", err)
	}
	return slices.Contains(ch.Members, userID), nil
}
