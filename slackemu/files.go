package slackemu

import (
	"encoding/json"
	"net/http"
	"strings"
)

func (s *Server) filesGetUploadURL(r *apiRequest) (reply, error) {
	name := r.get("filename")
	if name == "" {
		return nil, errCode("invalid_arguments", "filename is required")
	}
	length, err := r.intArg("length", 0)
	if err != nil {
		return nil, err
	}
	if length <= 0 {
		return nil, errCode("invalid_arguments", "length must be more than 0")
	}
	f := &File{ID: s.ids.next("F"), Name: name, Title: name, Length: length}
	s.files[f.ID] = f
	s.fileOrder = append(s.fileOrder, f.ID)
	return reply{"upload_url": s.url + "upload/" + f.ID, "file_id": f.ID}, nil
}

// upload is the POST of a file's bytes to its upload URL.
func (s *Server) upload(r *apiRequest) (reply, error) {
	f, ok := s.files[r.id]
	if !ok {
		return nil, &slackError{code: "file_not_found", status: http.StatusNotFound}
	}
	f.Content, f.Uploaded = r.upload, true
	return reply{}, nil
}

func (s *Server) filesComplete(r *apiRequest) (reply, error) {
	var summaries []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal(r.rawJSON("files"), &summaries); err != nil || len(summaries) == 0 {
		return nil, errCode("invalid_arguments", "files must be a JSON array of {id, title}")
	}
	var chans []*channel
	var targets []string
	if id := r.get("channel_id"); id != "" {
		targets = append(targets, id)
	}
	if list := r.get("channels"); list != "" {
		targets = append(targets, strings.Split(list, ",")...)
	}
	for _, id := range targets {
		c, code := s.resolveChannelLocked(strings.TrimSpace(id))
		if code != "" {
			return nil, errCode(code)
		}
		if err := canPostLocked(c); err != nil {
			return nil, err
		}
		chans = append(chans, c)
	}
	var files []*File
	var out []map[string]any
	for _, sum := range summaries {
		f, ok := s.files[sum.ID]
		if !ok || !f.Uploaded {
			return nil, errCode("file_not_found", "upload the file's bytes to its upload_url first")
		}
		if sum.Title != "" {
			f.Title = sum.Title
		}
		files = append(files, f)
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	for _, c := range chans {
		m := &Message{Channel: c.id, TS: s.newTSLocked(), User: BotUserID, Text: r.get("initial_comment"),
			ThreadTS: r.get("thread_ts"), Source: "files.completeUploadExternal", Posted: s.now()}
		if blocks := r.rawJSON("blocks"); blocks != nil && m.Text == "" {
			if err := validateBlocks(blocks, "message"); err != nil {
				return nil, err
			}
			m.Blocks = blocks
		}
		for _, f := range files {
			f.Shared = true
			f.Channels = append(f.Channels, c.id)
			m.Files = append(m.Files, f.ID)
		}
		c.messages = append(c.messages, m)
		mc := m.clone()
		var names []string
		for _, f := range files {
			names = append(names, f.Name)
		}
		r.emit(Event{Time: s.now(), Kind: EventFileShared, User: c.user, Channel: c.id, Text: strings.Join(names, ", "), Message: &mc})
	}
	return reply{"files": out}, nil
}

// Files lists the files shared into userID's DM, in upload order.
func (s *Server) Files(userID string) []File { return s.FilesIn(imID(userID)) }

// FilesIn lists the files shared into a channel or DM, in upload order.
func (s *Server) FilesIn(channelID string) []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, id := range s.fileOrder {
		f := s.files[id]
		for _, ch := range f.Channels {
			if ch == channelID {
				out = append(out, f.clone())
				break
			}
		}
	}
	return out
}
