package hubtest

// FaultKind is what a fault does to the requests it matches.
type FaultKind int

const (
	// FaultStatus answers with Status (a 5xx, or 429 with RetryAfter/RateLimit) instead.
	FaultStatus FaultKind = iota + 1
	// FaultDropConnection sends After bytes of the body, then drops the connection.
	FaultDropConnection
	// FaultCorrupt serves the body with one byte changed: right length, wrong content.
	FaultCorrupt
	// FaultIgnoreRange answers a Range request with 200 and the whole file.
	FaultIgnoreRange
	// FaultStall sends After bytes of the body, then sends nothing until the client gives up.
	// With Route RouteAPI it stalls API answers (a JSON body), after their headers and After bytes.
	FaultStall
	// FaultRedirect makes an LFS resolve redirect to Location (say, a host the client must not
	// approve) instead of the CDN.
	FaultRedirect
	// FaultLongBody serves Extra bytes more than the file's size, without a Content-Length, so
	// only the client's own count can cut it off.
	FaultLongBody
	// FaultEndlessPages answers tree listings with an empty page that links to a next page with
	// a fresh cursor, every time, as a broken or hostile server might.
	FaultEndlessPages
)

// Route is the part of the server a fault applies to.
type Route int

const (
	// RouteAny matches every request. For body faults it means wherever the file's bytes are
	// served: the resolve URL for plain git files, the CDN for LFS files.
	RouteAny Route = iota
	// RouteAPI matches /api/... requests.
	RouteAPI
	// RouteResolve matches /{repo}/resolve/... and /{repo}/raw/... requests.
	RouteResolve
	// RouteCDN matches requests to the CDN handler.
	RouteCDN
)

// Fault is a failure injected into matching requests.
type Fault struct {
	Kind FaultKind
	// Repo and File restrict the fault to one repository and one file path ("" matches any).
	Repo, File string
	// Route restricts the fault to one part of the server.
	Route Route
	// Times is how many matching requests the fault affects; 0 means all of them (persistent).
	Times int
	// Status, for FaultStatus.
	Status int
	// RetryAfter and RateLimit are sent as the Retry-After and RateLimit headers with FaultStatus
	// (e.g. "1", and `"resolvers";r=0;t=0`).
	RetryAfter, RateLimit string
	// After is how many body bytes FaultDropConnection and FaultStall send first.
	After int64
	// Extra is how many bytes FaultLongBody adds.
	Extra int64
	// Location is where FaultRedirect sends the client.
	Location string
}

// isBodyFault reports whether the fault acts on a file's bytes rather than on the whole answer.
func (f *Fault) isBodyFault() bool {
	switch f.Kind {
	case FaultDropConnection, FaultCorrupt, FaultIgnoreRange, FaultStall, FaultLongBody:
		return true
	}
	return false
}
