// Package slackemu is a local Slack workspace that speaks the real wire
// protocol, so nudgebot can be run end to end, in tests and in
// `nudgebot demo`, with slack-go's unmodified client.
//
// # What it emulates
//
// A [Server] listens on 127.0.0.1 and serves:
//
//   - the Web API methods nudgebot calls, at URL()+"<method>" (form or JSON
//     bodies, token in the form or as a Bearer header): auth.test,
//     apps.connections.open, chat.postMessage / postEphemeral / update /
//     delete / getPermalink, conversations.open / history / replies /
//     members / info, users.info / list, views.open / update / push /
//     publish, and
//     files.getUploadURLExternal / completeUploadExternal with the upload
//     URL they hand out;
//   - Socket Mode at /link: a hello frame, WebSocket PINGs, envelopes for
//     slash commands, block actions, view submissions and Events API
//     events, and acks read back and matched to their envelope. Up to 10
//     connections may be open at once, as Slack allows an app (each gets
//     its own hello; an eleventh gets a disconnect frame with reason
//     too_many_websockets instead, see [WithMaxConnections]); envelopes
//     take turns among the open connections, round-robin in the order
//     they connected (Slack promises no order, so a bot must not rely on
//     this one either);
//   - a response_url per slash command and message button click, at
//     URL()+"response/<id>".
//
// Point slack-go at it as at Slack:
//
//	emu := slackemu.New()
//	defer emu.Close()
//	emu.AddUser(slackemu.User{ID: "U1", Name: "ada", TZ: "Europe/London"})
//	api := slack.New("xoxb-test", slack.OptionAPIURL(emu.URL()), slack.OptionAppLevelToken("xapp-test"))
//	client := socketmode.New(api)
//
// Tests and the demo act as people through the drivers ([Server.SlashCommand],
// [Server.ClickButton], [Server.SubmitView], [Server.OpenAppHome], ...) and
// look at what the bot did through the inspectors ([Server.DM],
// [Server.Ephemerals], [Server.HomeView], [Server.Calls], [Server.Acks]).
// [Server.WaitFor] blocks until a condition holds, re-checking it after every
// recorded call, ack or state change, so tests never poll with sleeps.
// [OnEvent] receives a readable transcript of what people saw and did.
//
// Fault knobs ([Server.RateLimit], [Server.FailNext], [Server.SetLatency],
// [Server.Disconnect], [Server.Drop]) reproduce what goes wrong with the
// real service: 429s with Retry-After, 5xx, Slack error strings, calls that
// were applied but whose answer never arrived, slow answers, refreshed and
// broken sockets. Redelivery is explicit by default: send the same
// envelope id again with RetryAttempt set, as Slack would after a missed
// ack. With [WithRedelivery] the emulator resends by itself as Slack does:
// an envelope not acked in time, or left unacked on a socket that closed,
// goes again to another open connection with the same envelope_id,
// retry_attempt one higher and a retry_reason, a bounded number of times;
// [Server.ExpireAcks] makes the timeout pass now, so tests need no sleeps.
// [Server.Deliveries] lists every frame written and the connection it
// went out on, and [Ack.Conn] says which connection an ack came on.
//
// Slack behaviours it keeps because bots get them wrong: trigger_ids expire
// after 3 seconds and work once; a response_url works 5 times in 30
// minutes (then answers HTTP 404); message metadata comes back from conversations.history only with
// include_all_metadata; a deactivated person's DM is archived; a person
// cannot submit a modal with an empty required input; history is newest
// first and paginated by cursor; blocks are checked for the limits Slack
// enforces (missing type, duplicate block_id, over-long text).
//
// # What it does not emulate
//
// There is no real authentication: a token is accepted when it equals the
// one set with [WithBotToken] / [WithAppToken], or, when none was set, when
// it has the right prefix (xoxb- for the bot, xapp- for apps.connections.open).
// Scopes are not checked. There is one workspace ([TeamID]) and one app
// ([AppID]); no Enterprise Grid, shared channels, multi-person DMs, threads
// beyond storing thread_ts, reactions, view_closed events, or Slack's
// retry schedule (its later retries after a minute and five minutes: the
// emulator resends at once, after the ack timeout). What people type in their DM with the bot, edit and delete
// there ([Server.PersonSays], [Server.PersonEdits], [Server.PersonDeletes])
// arrives as Slack's message.im events. Interaction payloads do not
// carry message metadata (read it from conversations.history instead).
// Time for timestamps, trigger expiry and rate limits comes from the clock
// set with [WithClock]; ack latency is measured on the real monotonic clock.
package slackemu
