package registrytest

// FaultKind is what a fault does to the requests it matches.
type FaultKind int

const (
	// FaultStatus answers with Status (a 5xx, or 429) instead.
	FaultStatus FaultKind = iota + 1
	// FaultDropConnection sends After bytes of the body, then drops the connection.
	FaultDropConnection
	// FaultCorrupt serves the body with one byte changed: right length, wrong content.
	FaultCorrupt
	// FaultStall sends After bytes of the body, then sends nothing until the client gives up.
	FaultStall
	// FaultRedirect answers with a redirect to Location (a host the client must not trust with
	// its credentials, say).
	FaultRedirect
	// FaultLongBody serves Extra bytes more than the blob, without a Content-Length, so only the
	// client's own count can cut it off.
	FaultLongBody
	// FaultIgnoreRange answers a Range request with 200 and the whole blob.
	FaultIgnoreRange
)

// Route is the part of the registry API a fault applies to.
type Route int

const (
	// RouteAny matches every GET and HEAD request.
	RouteAny Route = iota
	// RouteManifests matches /v2/<repo>/manifests/<ref>.
	RouteManifests
	// RouteBlobs matches /v2/<repo>/blobs/<digest>, and blob downloads from the storage host.
	RouteBlobs
	// RouteReferrers matches /v2/<repo>/referrers/<digest>.
	RouteReferrers
)

// Fault is a failure injected into matching GET and HEAD requests. Pushes (PUT, POST, PATCH)
// are never faulted, so tests can set up content before the faults bite.
type Fault struct {
	Kind FaultKind
	// Route restricts the fault to one part of the API.
	Route Route
	// Repo restricts the fault to one repository, Digest to one blob or manifest reference
	// (a digest or a tag); "" matches any.
	Repo, Digest string
	// Times is how many matching requests the fault affects; 0 means all of them.
	Times int
	// Status, for FaultStatus.
	Status int
	// After is how many body bytes FaultDropConnection and FaultStall send first.
	After int64
	// Extra is how many bytes FaultLongBody adds.
	Extra int64
	// Location is where FaultRedirect sends the client.
	Location string
}
