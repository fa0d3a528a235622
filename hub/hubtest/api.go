package hubtest

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// splitRev takes a revision off the front of segs: one segment (escaped "refs%2Fpr%2F1" arrives
// as one), or the three of an unescaped "refs/pr/N".
func splitRev(segs []string) (rev string, rest []string) {
	if len(segs) >= 3 && segs[0] == "refs" && segs[1] == "pr" {
		return strings.Join(segs[:3], "/"), segs[3:]
	}
	if len(segs) == 0 {
		return "", nil
	}
	return segs[0], segs[1:]
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, segs []string) {
	switch {
	case len(segs) == 1 && segs[0] == "whoami-v2":
		s.serveWhoami(w, r)
		return
	case len(segs) == 3 && (segs[0] == "organizations" || segs[0] == "users") && segs[2] == "overview":
		s.serveOverview(w, segs[0] == "organizations", segs[1])
		return
	case len(segs) >= 6 && segs[0] == "resolve-cache" && segs[1] == "models":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			s.serveResolveCache(w, r, segs[2]+"/"+segs[3], segs[4], strings.Join(segs[5:], "/"))
			return
		}
		hubError(w, http.StatusMethodNotAllowed, "", "Method not allowed")
		return
	case len(segs) >= 3 && segs[0] == "models":
	default:
		hubError(w, http.StatusNotFound, "", "Sorry, we can't find the page you are looking for.")
		return
	}
	id := segs[1] + "/" + segs[2]
	rest := segs[3:]
	action := ""
	if len(rest) > 0 {
		action, rest = rest[0], rest[1:]
	}
	switch action {
	case "", "revision":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			break
		}
		rev := "main"
		if action == "revision" {
			rev = strings.Join(rest, "/")
		}
		if rp, ok := s.lookup(w, r, id, false); ok {
			if c, ok := s.resolveRev(w, rp, rev); ok {
				s.serveModelInfo(w, r, rp, c)
			}
		}
		return
	case "tree":
		rev, path := splitRev(rest)
		if rp, ok := s.lookup(w, r, id, false); ok {
			if c, ok := s.resolveRev(w, rp, rev); ok {
				s.serveTree(w, r, rp, c, rev, strings.Join(path, "/"))
			}
		}
		return
	case "paths-info":
		if r.Method != http.MethodPost {
			break
		}
		rev, _ := splitRev(rest)
		if rp, ok := s.lookup(w, r, id, false); ok {
			if c, ok := s.resolveRev(w, rp, rev); ok {
				s.servePathsInfo(w, r, c)
			}
		}
		return
	case "refs":
		if rp, ok := s.lookup(w, r, id, false); ok {
			s.serveRefs(w, r, rp)
		}
		return
	case "auth-check":
		if _, ok := s.lookup(w, r, id, true); ok {
			writeJSON(w, map[string]any{})
		}
		return
	}
	hubError(w, http.StatusNotFound, "", "Sorry, we can't find the page you are looking for.")
}

func (s *Server) serveWhoami(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	user, ok := s.tokens[bearer(r)]
	s.mu.Unlock()
	if !ok {
		hubError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return
	}
	writeJSON(w, map[string]any{
		"type": "user", "id": fmt.Sprintf("%024x", sha1.Sum([]byte(user)))[:24], "name": user, "fullname": user,
		"orgs": []any{}, "isPro": false,
		"auth": map[string]any{"type": "access_token", "accessToken": map[string]any{"displayName": "hubtest", "role": "read"}},
	})
}

func (s *Server) serveOverview(w http.ResponseWriter, org bool, name string) {
	s.mu.Lock()
	verified, declared := s.orgs[name]
	models := 0
	for id, rp := range s.repos {
		if strings.HasPrefix(id, name+"/") && !rp.private {
			models++
		}
	}
	s.mu.Unlock()
	if !declared && models == 0 {
		hubError(w, http.StatusNotFound, "", fmt.Sprintf("%s not found", name))
		return
	}
	if org {
		writeJSON(w, map[string]any{"name": name, "fullname": name, "avatarUrl": "", "isVerified": verified,
			"isFollowing": false, "numUsers": 1, "numModels": models, "numSpaces": 0, "numDatasets": 0,
			"numFollowers": 0, "numPapers": 0, "details": ""})
		return
	}
	writeJSON(w, map[string]any{"user": name, "fullname": name, "avatarUrl": "", "isPro": false, "type": "user",
		"numModels": models, "orgs": []any{}})
}

// modelInfo is the Hub's /api/models answer; siblings get blob fields with ?blobs=true.
func (s *Server) serveModelInfo(w http.ResponseWriter, r *http.Request, rp *repo, c *commit) {
	q := r.URL.Query()
	blobs := q.Get("blobs") == "true" || q.Get("blobs") == "1"
	siblings := make([]map[string]any, 0, len(c.paths))
	var used int64
	for _, p := range c.paths {
		f := c.files[p]
		used += f.size
		sib := map[string]any{"rfilename": p}
		if blobs {
			sib["size"] = f.size
			sib["blobId"] = f.oid
			if f.lfs {
				// Here the key is sha256; the tree API calls the same value lfs.oid.
				sib["lfs"] = map[string]any{"size": f.size, "sha256": f.sha256, "pointerSize": len(f.pointer)}
			}
		}
		siblings = append(siblings, sib)
	}
	var gated any = false
	if rp.gated != "" {
		gated = rp.gated
	}
	ns, _, _ := strings.Cut(rp.id, "/")
	info := map[string]any{
		"_id": fmt.Sprintf("%x", sha1.Sum([]byte(rp.id)))[:24], "id": rp.id, "modelId": rp.id, "author": ns,
		"sha": c.sha, "lastModified": c.date.Format("2006-01-02T15:04:05.000Z"),
		"createdAt": rp.createdAt.Format("2006-01-02T15:04:05.000Z"), "private": rp.private, "gated": gated,
		"disabled": rp.disabled, "downloads": 0, "downloadsAllTime": 0, "likes": 0, "trendingScore": 0,
		"tags": []string{"region:us"}, "library_name": nil, "pipeline_tag": nil, "cardData": nil, "config": nil,
		"siblings": siblings, "spaces": []string{}, "usedStorage": used, "inference": "not-popular",
	}
	if expand := q["expand"]; len(expand) > 0 {
		if blobs || q.Has("securityStatus") {
			hubError(w, http.StatusBadRequest, "", "expand cannot be combined with blobs or securityStatus")
			return
		}
		only := map[string]any{"_id": info["_id"], "id": info["id"]}
		for _, k := range expand {
			if v, ok := info[k]; ok {
				only[k] = v
			}
		}
		info = only
	} else if q.Get("securityStatus") == "true" {
		info["securityRepoStatus"] = map[string]any{"scansDone": true, "filesWithIssues": []any{}}
	}
	w.Header().Set("X-Repo-Commit", c.sha)
	writeJSON(w, info)
}

type treeItem struct {
	Type       string         `json:"type"`
	OID        string         `json:"oid"`
	Size       int64          `json:"size"`
	Path       string         `json:"path"`
	LFS        map[string]any `json:"lfs,omitempty"`
	LastCommit map[string]any `json:"lastCommit,omitempty"`
}

// items lists files and directories under dir ("" = root), recursively or one level deep.
func (c *commit) items(dir string, recursive, expand bool) ([]treeItem, bool) {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	dirs := map[string]bool{}
	var out []treeItem
	found := dir == ""
	for _, p := range c.paths {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		found = true
		rel := strings.TrimPrefix(p, prefix)
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ {
			d := prefix + strings.Join(parts[:i], "/")
			if (recursive || i == 1) && !dirs[d] {
				dirs[d] = true
				h := sha1.Sum([]byte(c.sha + "\x00" + d))
				out = append(out, treeItem{Type: "directory", OID: hex.EncodeToString(h[:]), Path: d})
			}
		}
		if !recursive && len(parts) > 1 {
			continue
		}
		f := c.files[p]
		it := treeItem{Type: "file", OID: f.oid, Size: f.size, Path: p}
		if f.lfs {
			it.LFS = map[string]any{"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer)}
		}
		if expand {
			it.LastCommit = map[string]any{"id": c.sha, "title": c.title, "date": c.date.Format(time.RFC3339)}
		}
		out = append(out, it)
	}
	sortItems(out)
	return out, found
}

func sortItems(items []treeItem) {
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
}

// serveTree answers /tree/{rev}[/{path}], a page at a time, with Link: rel="next".
func (s *Server) serveTree(w http.ResponseWriter, r *http.Request, rp *repo, c *commit, rev, dir string) {
	q := r.URL.Query()
	recursive := q.Get("recursive") == "true" || q.Get("recursive") == "1"
	expand := q.Get("expand") == "true" || q.Get("expand") == "1"
	items, found := c.items(dir, recursive, expand)
	if !found {
		w.Header().Set("X-Repo-Commit", c.sha)
		hubError(w, http.StatusNotFound, "EntryNotFound", fmt.Sprintf("%s does not exist on %q", dir, rev))
		return
	}
	size := s.pageSize
	if expand {
		size = min(size, 50)
	}
	start := 0
	if cur := q.Get("cursor"); cur != "" {
		b, err := base64.RawURLEncoding.DecodeString(cur)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 || n > len(items) {
			hubError(w, http.StatusBadRequest, "", "Invalid cursor")
			return
		}
		start = n
	}
	end := min(start+size, len(items))
	if end < len(items) {
		next := *r.URL
		nq := next.Query()
		nq.Set("cursor", base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end))))
		next.RawQuery = nq.Encode()
		next.Scheme, next.Host = "http", r.Host
		if r.TLS != nil {
			next.Scheme = "https"
		}
		w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.String()))
	}
	w.Header().Set("X-Repo-Commit", c.sha)
	writeJSON(w, items[start:end])
}

// servePathsInfo answers POST /paths-info/{rev}, with a form (huggingface_hub) or JSON
// (huggingface.js) body.
func (s *Server) servePathsInfo(w http.ResponseWriter, r *http.Request, c *commit) {
	var paths []string
	expand := false
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var body struct {
			Paths  []string `json:"paths"`
			Expand bool     `json:"expand"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
			hubError(w, http.StatusBadRequest, "", "Invalid JSON body")
			return
		}
		paths, expand = body.Paths, body.Expand
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			hubError(w, http.StatusBadRequest, "", "Invalid form body")
			return
		}
		paths = r.PostForm["paths"]
		expand = r.PostForm.Get("expand") == "True" || r.PostForm.Get("expand") == "true"
	}
	all, _ := c.items("", true, expand)
	byPath := map[string]treeItem{}
	for _, it := range all {
		byPath[it.Path] = it
	}
	out := []treeItem{}
	for _, p := range paths {
		if it, ok := byPath[strings.Trim(p, "/")]; ok {
			out = append(out, it)
		}
	}
	writeJSON(w, out)
}

func (s *Server) serveRefs(w http.ResponseWriter, r *http.Request, rp *repo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := func(kind, name, sha string) map[string]any {
		return map[string]any{"name": name, "ref": "refs/" + kind + "/" + name, "targetCommit": sha}
	}
	branches, tags := []any{}, []any{}
	for _, b := range sortedKeys(rp.branches) {
		branches = append(branches, ref("heads", b, rp.branches[b]))
	}
	for _, t := range sortedKeys(rp.tags) {
		tags = append(tags, ref("tags", t, rp.tags[t]))
	}
	out := map[string]any{"branches": branches, "converts": []any{}, "tags": tags}
	if v := r.URL.Query().Get("include_prs"); v == "1" || v == "true" {
		prs := []any{}
		for n := 1; n <= len(rp.prs); n++ {
			prs = append(prs, map[string]any{"name": fmt.Sprintf("refs/pr/%d", n), "ref": fmt.Sprintf("refs/pr/%d", n), "targetCommit": rp.prs[n]})
		}
		out["pullRequests"] = prs
	}
	writeJSON(w, out)
}
