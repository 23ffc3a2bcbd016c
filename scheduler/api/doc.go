// Package api is the HTTP JSON API of petite's scheduler daemon, under
// /v1/: its wire types, the job spec users write (YAML or JSON, decoded
// strictly), the handler a server serves, and the client the CLI uses.
//
// Every error is a JSON body {"error":{"code":...,"message":...}} with a
// stable code (see the Code constants). Writes and, by default, reads go
// to the raft leader: a follower forwards them. A read with ?stale=true is
// answered by the server asked, from what it has applied.
package api
