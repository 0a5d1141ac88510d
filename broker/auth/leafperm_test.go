package auth_test

import (
	"slices"
	"testing"

	"github.com/docaxis/docaxis/broker/auth"
)

// The leaf permissions are built from the record's names; a member's link
// account issued by an earlier version holds exactly these strings, so
// they must not change.
func TestLeafPermissionsUnchanged(t *testing.T) {
	p := auth.LeafPermissions("NATIONAL", "QN")
	wantPub := []string{
		"_INBOX_FED_QN.>",
		"$JS.NATIONAL.API.CONSUMER.RESET.AXIS_FED_RELAY.fed_down_QN",
		"$JS.NATIONAL.API.CONSUMER.INFO.AXIS_FED_RELAY.fed_down_QN",
		"$JS.NATIONAL.API.CONSUMER.RESET.KV_AXIS_DIRECTORY.fed_dir_QN",
		"$JS.NATIONAL.API.CONSUMER.INFO.KV_AXIS_DIRECTORY.fed_dir_QN",
		"$JS.FC.AXIS_FED_RELAY.fed_down_QN.>",
		"$JS.FC.KV_AXIS_DIRECTORY.fed_dir_QN.>",
		"$JS.FC.NATIONAL.*.AXIS_FED_RELAY.fed_down_QN.>",
		"$JS.FC.NATIONAL.*.KV_AXIS_DIRECTORY.fed_dir_QN.>",
	}
	wantSub := []string{
		"axis.fedlink.QN.down",
		"axis.fedlink.QN.dir",
		"$JSC.R.>",
		"$JS.QN.API.CONSUMER.INFO.AXIS_FED_OUT.fed_up",
		"$JS.QN.API.CONSUMER.MSG.NEXT.AXIS_FED_OUT.fed_up",
		"$JS.ACK.AXIS_FED_OUT.fed_up.>",
		"$JS.ACK.QN.*.AXIS_FED_OUT.fed_up.>",
	}
	if !slices.Equal(p.Pub.Allow, wantPub) {
		t.Errorf("publish:\n got %q\nwant %q", p.Pub.Allow, wantPub)
	}
	if !slices.Equal(p.Sub.Allow, wantSub) {
		t.Errorf("subscribe:\n got %q\nwant %q", p.Sub.Allow, wantSub)
	}
}
