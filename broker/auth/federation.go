package auth

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
)

// Federation: a member bus links to the national bus through a NATS leaf
// node connection that authenticates with credentials the national issues
// (LeafCreds). The leaf binds the member's AXIS account to the national's
// AXIS account; the user's permissions decide what crosses the link (for a
// leaf connection the user's publish permissions are what the member may
// send up, its subscribe permissions what the national sends down).

// leafUserPrefix names the user of a member's leaf connection:
// "federation <member> of <national>".
const leafUserPrefix = "federation "

// AccountPublicKey is the public key of the AXIS account: in operator mode
// it is the account's name, which a leaf remote binds (LocalAccount).
func (a *Authority) AccountPublicKey() string {
	pub, _ := a.account.PublicKey()
	return pub
}

// LeafCreds issues the credentials of member's leaf connection to this
// (national) bus into path. They work for leaf node connections only and
// allow exactly the traffic of LeafPermissions.
func (a *Authority) LeafCreds(national, member, path string) error {
	return a.issueLimited(path, leafUserPrefix+member+" of "+national, LeafPermissions(national, member), []string{jwt.ConnectionTypeLeafnode})
}

// LeafPermissions allow a member's leaf connection the federation traffic
// of that member and nothing else: no record subjects, no inboxes, no other
// member's links, and of the national's JetStream API only the calls that
// durable stream sourcing makes on the member's own consumers.
//
// Up (member → national): deliveries of the member's outbound consumer,
// responses to the national's API calls, and, for the member's inbound
// sources, consumer resets and flow-control answers.
// Down (national → member): the deliveries of the member's two consumers on
// the national (relay and directory), responses to the member's API calls,
// and the national's resets and flow control of the member's outbound
// consumer.
func LeafPermissions(national, member string) jwt.Permissions {
	link := "axis.fedlink." + member
	up := []string{
		link + ".up",
		"$JSC.R.>",
		"$JS." + national + ".API.CONSUMER.RESET.AXIS_FED_RELAY.fed_down_" + member,
		"$JS." + national + ".API.CONSUMER.INFO.AXIS_FED_RELAY.fed_down_" + member,
		"$JS." + national + ".API.CONSUMER.RESET.KV_AXIS_DIRECTORY.fed_dir_" + member,
		"$JS." + national + ".API.CONSUMER.INFO.KV_AXIS_DIRECTORY.fed_dir_" + member,
		"$JS.FC.AXIS_FED_RELAY.fed_down_" + member + ".>",
		"$JS.FC.KV_AXIS_DIRECTORY.fed_dir_" + member + ".>",
	}
	down := []string{
		link + ".down",
		link + ".dir",
		"$JSC.R.>",
		"$JS." + member + ".API.CONSUMER.RESET.AXIS_FED_OUT.fed_uplink",
		"$JS." + member + ".API.CONSUMER.INFO.AXIS_FED_OUT.fed_uplink",
		"$JS.FC.AXIS_FED_OUT.fed_uplink.>",
	}
	return jwt.Permissions{Pub: jwt.Permission{Allow: up}, Sub: jwt.Permission{Allow: down}}
}

// LinkOfCreds reads leaf credentials issued by LeafCreds and returns the
// member and national bus ids they link.
func LinkOfCreds(path string) (member, national string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("read uplink credentials: %w", err)
	}
	tok, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		return "", "", fmt.Errorf("uplink credentials %s: %w", path, err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return "", "", fmt.Errorf("uplink credentials %s: %w", path, err)
	}
	rest, ok := strings.CutPrefix(uc.Name, leafUserPrefix)
	member, national, ok2 := strings.Cut(rest, " of ")
	if !ok || !ok2 || member == "" || national == "" {
		return "", "", fmt.Errorf("uplink credentials %s were not issued by 'docaxis federation member add' (user %q)", path, uc.Name)
	}
	return member, national, nil
}
