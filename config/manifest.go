package config

// Manifest returns the Slack app manifest (YAML) nudgebot is built for.
// The same text is committed as slack-app-manifest.yaml at the repository
// root, and a test keeps the two identical.
func Manifest() string { return manifest }

const manifest = `# Slack app manifest for nudgebot.
# Create the app at https://api.slack.com/apps → Create New App → From a manifest,
# and paste this file. Then:
#   - Basic Information → App-Level Tokens: create a token with the
#     connections:write scope; that is SLACK_APP_TOKEN (xapp-…).
#   - Install App: install to the workspace; the Bot User OAuth Token is
#     SLACK_BOT_TOKEN (xoxb-…).
# nudgebot uses Socket Mode, so no request URLs are needed.
#
# Bot scopes, and why each is needed:
#   chat:write     send nudges, digests and replies
#   commands       receive /nudge and /reflect
#   im:write       open the direct message each nudge is sent in
#   im:history     read the bot's DMs after a crash, so a nudge is never sent twice,
#                  and receive what people type there (message.im): a reply
#                  to a nudge is saved as their private reflection
#   users:read     read each person's time zone; notice deactivated accounts (user_change)
#   channels:read  list the members of public digest channels (conversations.members)
#   groups:read    list the members of private digest channels (conversations.members)
#   files:write    upload the file /reflect export produces
_metadata:
  major_version: 1
  minor_version: 1
display_information:
  name: nudgebot
  description: One small leadership practice a day, sent to you by DM.
features:
  app_home:
    home_tab_enabled: true
    messages_tab_enabled: true
    messages_tab_read_only_enabled: false
  bot_user:
    display_name: nudgebot
    always_online: true
  slash_commands:
    - command: /nudge
      description: "Daily leadership nudges: start, stop, time, status, help"
      usage_hint: "[start | stop | now | time 08:30 | days mon-fri | pause 3d | resume | focus lead | tz Europe/Berlin | status | help]"
      should_escape: false
    - command: /reflect
      description: Save a private reflection
      usage_hint: "[text] | list | search WORD | export | delete ID"
      should_escape: false
oauth_config:
  scopes:
    bot:
      - chat:write
      - commands
      - im:write
      - im:history
      - users:read
      - channels:read
      - groups:read
      - files:write
settings:
  event_subscriptions:
    bot_events:
      - app_home_opened
      - message.im
      - user_change
  interactivity:
    is_enabled: true
  org_deploy_enabled: false
  socket_mode_enabled: true
  token_rotation_enabled: false
`
