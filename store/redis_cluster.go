package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys of what the nodes tell each other about pages and rooms (see Redis):
//
//	pages:<user>   sorted set: the SIP addresses of the nodes where user has a
//	               page open, each scored by when its entry expires (Unix ms)
//	rooms:<node>   hash: room name -> RoomSummary JSON, the rooms node hosts;
//	               replaced whole at each renewal, expires unless renewed

// setPage adds or renews one node's entry and keeps the key alive at least
// as long as its longest entry.
var setPage = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
local want = tonumber(ARGV[3])
if ttl < want then redis.call('PEXPIRE', KEYS[1], want) end
return 1`)

// SetPage records that user has a page open on node (its SIP address)
// until until; renewing moves the expiry.
func (r *Redis) SetPage(ctx context.Context, user, node string, until time.Time) error {
	ttl := time.Until(until).Milliseconds()
	if user == "" || node == "" || ttl <= 0 {
		return errors.New("store: a page without a user, a node or a future expiry")
	}
	if err := setPage.Run(ctx, r.c, []string{r.key("pages", user)}, node, until.UnixMilli(), ttl).Err(); err != nil {
		return fmt.Errorf("store: redis: page of %s on %s: %w", user, node, err)
	}
	return nil
}

// DropPage removes node's entry for user (its last page there closed).
func (r *Redis) DropPage(ctx context.Context, user, node string) error {
	if err := r.c.ZRem(ctx, r.key("pages", user), node).Err(); err != nil {
		return fmt.Errorf("store: redis: drop page of %s on %s: %w", user, node, err)
	}
	return nil
}

// PageNodes returns the nodes where user has a page open (entries not
// expired at now).
func (r *Redis) PageNodes(ctx context.Context, user string, now time.Time) ([]string, error) {
	out, err := r.c.ZRangeByScore(ctx, r.key("pages", user), &redis.ZRangeBy{Min: "(" + strconv.FormatInt(now.UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: redis: pages of %s: %w", user, err)
	}
	return out, nil
}

// RoomSummary is a room as its host tells the other nodes (rooms:<node>).
type RoomSummary struct {
	Participants int    `json:"participants"`
	Rate         int    `json:"rate"`
	Locked       bool   `json:"locked"`
	Max          int    `json:"max"`
	Recording    string `json:"recording,omitempty"` // the file, on the host, while it records
}

// SetNodeRooms replaces node id's list of the rooms it hosts with rooms,
// living ttl unless set again (an empty list deletes it).
func (r *Redis) SetNodeRooms(ctx context.Context, id string, rooms map[string]RoomSummary, ttl time.Duration) error {
	k := r.key("rooms", id)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, k)
		if len(rooms) == 0 {
			return nil
		}
		vals := make([]any, 0, 2*len(rooms))
		for name, s := range rooms {
			b, err := json.Marshal(s)
			if err != nil {
				return err
			}
			vals = append(vals, name, b)
		}
		p.HSet(ctx, k, vals...)
		p.PExpire(ctx, k, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: redis: rooms of node %s: %w", id, err)
	}
	return nil
}

// HostedRoom is a room another node hosts, as ClusterRooms lists it.
type HostedRoom struct {
	Name string
	Node string // the host's node id
	RoomSummary
}

// ClusterRooms lists the rooms the live nodes other than self (a node id)
// host: each node's rooms:<node> whose room:<name> still names that node
// (a room it gave up, or lost to another node, is left out).
func (r *Redis) ClusterRooms(ctx context.Context, self string) ([]HostedRoom, error) {
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []HostedRoom
	for id, addr := range nodes {
		if id == self {
			continue
		}
		m, err := r.c.HGetAll(ctx, r.key("rooms", id)).Result()
		if err != nil {
			return nil, fmt.Errorf("store: redis: rooms of node %s: %w", id, err)
		}
		if len(m) == 0 {
			continue
		}
		names := make([]string, 0, len(m))
		keys := make([]string, 0, len(m))
		for name := range m {
			names = append(names, name)
			keys = append(keys, r.key("room", name))
		}
		hosts, err := r.c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("store: redis: room hosts: %w", err)
		}
		for i, name := range names {
			if h, _ := hosts[i].(string); h != addr {
				continue
			}
			var s RoomSummary
			if err := json.Unmarshal([]byte(m[name]), &s); err != nil {
				r.log.Warn("store: redis: a room summary that does not parse is ignored", "node", id, "room", name, "error", err)
				continue
			}
			out = append(out, HostedRoom{Name: name, Node: id, RoomSummary: s})
		}
	}
	return out, nil
}
