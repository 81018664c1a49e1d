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
	WhoVoters                  = "members of that channel when the pulse was posted"
	WhoSignedIn                = "people signed in to Slack"
)

// Resource is what an actor asks to see or change.
type Resource struct {
	kind    resourceKind
	owner   string
	channel string
	voters  []string
}

type resourceKind int

const (
	kindOwn resourceKind = iota + 1
	kindSelf
	kindChannel
	kindChannelMember
	kindAdmin
	kindPulse
)

// Self is the actor's own records, found by their own user id: their
// settings, journal, status and App Home. Every record is kept under its
// owner's id, so a use case that takes no id from the request can reach
// no one else's; any signed-in person may, for themselves.
func Self() Resource { return Resource{kind: kindSelf} }

// OwnedBy is something stored with an owner that the request named by an
// id (a delivery, a person to forget): only that owner may act on it,
// admins included. Use cases read the owner from storage, never from the
// request, and ask this before acting.
func OwnedBy(userID string) Resource { return Resource{kind: kindOwn, owner: userID} }

// ChannelFigures are a channel's team figures (its digest, running or
// posted): for its members and the admins.
func ChannelFigures(channel string) Resource { return Resource{kind: kindChannel, channel: channel} }

// ChannelPost is speaking in a channel in a person's name: for its
// members only.
func ChannelPost(channel string) Resource { return Resource{kind: kindChannelMember, channel: channel} }

// PulseOf is answering a clarity pulse: for the people who were members
// of its channel when it was posted, a snapshot stored with the pulse,
// so a click costs no Slack call and nobody outside (who can open a
// public channel and press its buttons) can sway it or read a colleague's
// score from the average.
func PulseOf(voters []string) Resource { return Resource{kind: kindPulse, voters: voters} }

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
		return &Forbidden{Who: WhoSignedIn}
	}
	switch r.kind {
	case kindSelf:
		return nil
	case kindOwn:
		if r.owner != "" && a.UserID == r.owner {
			return nil
		}
		return &Forbidden{Who: WhoOwner}
	case kindPulse:
		if slices.Contains(r.voters, a.UserID) {
			return nil
		}
		return &Forbidden{Who: WhoVoters}
	case kindAdmin:
		if p.isAdmin(a.UserID) {
			return nil
		}
		return &Forbidden{Who: WhoAdmins}
	case kindChannel, kindChannelMember:
		return p.channel(ctx, a, r)
	}
	return &Forbidden{Who: "nobody"} // an unknown resource is never allowed
}

// channel answers for a channel's things and posts: members, asked of
// Slack at the time, and for its things the admins too.
func (p Policy) channel(ctx context.Context, a Actor, r Resource) error {
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
