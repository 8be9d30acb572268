package main

import (
	"github.com/voxgate/voxgate/api"
	"github.com/voxgate/voxgate/webclient"
)

var _ webclient.RoomOps = control{}

func (k control) Admit(room, leg string) (api.LegInfo, error) { return k.pages.sb.Admit(room, leg) }
func (k control) Move(room, leg, to string) error             { return k.pages.sb.Move(room, leg, to) }
func (k control) PINCallers() []api.PINCaller                 { return k.pages.sb.PINCallers() }
