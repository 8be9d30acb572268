package main

import (
	"context"
	"slices"
	"time"

	"github.com/voxgate/voxgate/api"
)

// Open pages and rooms across the cluster. A user's open voxgate pages are
// on the node that served them (their WebSocket, their WebRTC); each node
// writes pages:<user> (its SIP address, scored by an expiry) while the user
// has a page open there, so that a call for the user on any node reaches
// that node: forwarded as a WebSocket registration's call is
// (sip.ForwardHeader), and rung there with the user's other devices.

// pageTTL is how long a node's entry in pages:<user> lives unless renewed
// (every third of it). A node that dies leaves entries for that long, but
// they are skipped at once: only live nodes are forwarded to.
const pageTTL = 30 * time.Second

// presence is webclient's presence hook: a user's first page opened here
// or the last one closed. It only wakes the run goroutine, which compares
// the open pages with what Redis was told (the hook's calls may come out
// of order; the pages themselves are the truth).
func (c *cluster) presence(string, bool) {
	select {
	case c.pageKick <- struct{}{}:
	default:
	}
}

// syncPages writes pages:<user> for the users with a page open here that
// Redis was not told of (all of them when renew), and removes this node
// from those of users whose last page here closed.
func (c *cluster) syncPages(ctx context.Context, renew bool) {
	if c.pages == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	online := map[string]bool{}
	until := time.Now().Add(pageTTL)
	for _, user := range c.pages() {
		online[user] = true
		if c.published[user] && !renew {
			continue
		}
		if err := c.r.SetPage(sctx, user, c.cfg.Advertise, until); err != nil {
			c.log.Debug("cluster: an open page was not written (Redis)", "user", user, "error", err)
			continue // the next renewal tries again
		}
		if !c.published[user] {
			c.log.Debug("cluster: a page is open here", "user", user)
		}
		c.published[user] = true
	}
	for user := range c.published {
		if online[user] {
			continue
		}
		if err := c.r.DropPage(sctx, user, c.cfg.Advertise); err != nil {
			continue // its entry expires anyway
		}
		delete(c.published, user)
		c.log.Debug("cluster: no page open here any more", "user", user)
	}
}

// pageNodes returns the other live nodes where user has a page open.
func (c *cluster) pageNodes(user string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	nodes, err := c.r.PageNodes(ctx, user, time.Now())
	if err != nil {
		c.log.Warn("cluster: the user's pages on other nodes are not known (Redis)", "user", user, "error", err)
		return nil
	}
	return slices.DeleteFunc(nodes, func(n string) bool {
		return n == c.cfg.Advertise || !c.live(func(l *liveNodes) bool { return l.addrs[n] })
	})
}

// otherRooms lists the rooms other live nodes host (GET /api/v1/rooms),
// with what their hosts last wrote of them (rooms:<node>).
func (c *cluster) otherRooms() []api.RoomInfo {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	hosted, err := c.r.ClusterRooms(ctx, c.cfg.NodeID)
	if err != nil {
		c.log.Warn("cluster: the rooms of other nodes are not listed (Redis)", "error", err)
		return nil
	}
	out := make([]api.RoomInfo, 0, len(hosted))
	for _, h := range hosted {
		out = append(out, api.RoomInfo{Name: h.Name, Rate: h.Rate, Locked: h.Locked, Max: h.Max, Recording: h.Recording, Legs: []api.LegInfo{},
			Node: h.Node, Remote: true, Participants: h.Participants})
	}
	return out
}
