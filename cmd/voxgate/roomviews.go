package main

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/switchboard"
)

// Room views over Redis pub/sub (switchboard.RoomViews): the host of a
// room publishes what a page would see on roomview:<token> for the
// cascade leg that carries the token, and takes its moderator's commands
// on roomcmd:<token>, answering each on roomview:<token> (a "result" event
// with the command's id); the entering node subscribes to the first and
// publishes on the second. Redis is the cluster's trust: whoever can
// publish there is a node.

var _ switchboard.RoomViews = clusterRooms{}

// errNoHost: nobody listened to a command (the room's node went away).
var errNoHost = errors.New("the node hosting the room did not get the command")

func (r clusterRooms) WatchRoom(ctx context.Context, token string, f func(switchboard.RoomViewEvent)) (func(switchboard.RoomCommand) error, func(), error) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	stop, err := r.cl.r.Subscribe(sctx, "roomview:"+token, func(b []byte) {
		var e switchboard.RoomViewEvent
		if err := json.Unmarshal(b, &e); err != nil {
			r.cl.log.Warn("cluster: a room view event that does not parse is ignored", "error", err)
			return
		}
		f(e)
	})
	if err != nil {
		return nil, nil, err
	}
	context.AfterFunc(ctx, stop)
	send := func(cmd switchboard.RoomCommand) error {
		b, err := json.Marshal(cmd)
		if err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := r.cl.r.Publish(pctx, "roomcmd:"+token, b)
		if err == nil && n == 0 {
			err = errNoHost
		}
		return err
	}
	return send, stop, nil
}

func (r clusterRooms) ServeView(ctx context.Context, token, self string, do func(switchboard.RoomCommand) switchboard.RoomViewEvent) switchboard.ViewWatcher {
	log := r.cl.log.With("view", token)
	p := &viewPublisher{cl: r.cl, channel: "roomview:" + token, self: self, q: make(chan switchboard.RoomViewEvent, 256)}
	go p.run(ctx)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	stop, err := r.cl.r.Subscribe(sctx, "roomcmd:"+token, func(b []byte) {
		var cmd switchboard.RoomCommand
		if err := json.Unmarshal(b, &cmd); err != nil {
			log.Warn("cluster: a room command that does not parse is ignored", "error", err)
			return
		}
		res := do(cmd)
		if res.Error != "" {
			log.Info("cluster: a room command from another node was refused", "leg", cmd.Leg, "command", cmd.ID, "error", res.Error)
		} else {
			log.Info("cluster: room command from another node", "leg", cmd.Leg, "kick", cmd.Kick, "command", cmd.ID)
		}
		// The answer goes the events' way, after those the command caused.
		p.put(res)
	})
	if err != nil {
		log.Warn("cluster: the other node's moderator cannot act on this room (Redis)", "error", err)
	} else {
		context.AfterFunc(ctx, stop)
	}
	return p
}

// viewPublisher is a cascade leg's room watcher on the host: it publishes
// what a page would be told, in order, from its own goroutine (the room's
// events never wait on Redis; beyond 256 waiting, events are dropped).
type viewPublisher struct {
	cl      *cluster
	channel string
	self    string
	q       chan switchboard.RoomViewEvent
}

func (p *viewPublisher) Participants(room string, people []api.Participant) {
	p.put(switchboard.RoomViewEvent{Type: "participants", Room: room, Self: p.self, People: people})
}

func (p *viewPublisher) Notify(typ, room string, pt api.Participant) {
	p.put(switchboard.RoomViewEvent{Type: typ, Room: room, Self: p.self, P: pt})
}

// RoomState publishes the room's state (a "stats" event); one dropped
// for a slow Redis is made good by the next.
func (p *viewPublisher) RoomState(room string, st switchboard.RoomState) {
	p.put(switchboard.RoomViewEvent{Type: "stats", Room: room, Self: p.self, State: &st})
}

func (p *viewPublisher) put(e switchboard.RoomViewEvent) {
	select {
	case p.q <- e:
	default:
		p.cl.log.Warn("cluster: a room view event was dropped (Redis is slow)", "room", e.Room, "event", e.Type)
	}
}

func (p *viewPublisher) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-p.q:
			b, err := json.Marshal(e)
			if err != nil {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = p.cl.r.Publish(pctx, p.channel, b)
			cancel()
			if err != nil && ctx.Err() == nil {
				p.cl.log.Warn("cluster: a room view event was not sent (Redis)", "room", e.Room, "event", e.Type, "error", err)
			}
		}
	}
}
