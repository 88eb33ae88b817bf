package mtproto

import "fmt"

// DefaultDCs are Telegram's data centres (IPv4); test DCs are 10000+N.
// Media DCs (negative indexes) use the same addresses unless configured.
func DefaultDCs() map[int]string {
	return map[int]string{
		1: "149.154.175.50:443", 2: "149.154.167.51:443", 3: "149.154.175.100:443",
		4: "149.154.167.91:443", 5: "91.108.56.149:443",
		10001: "149.154.175.10:443", 10002: "149.154.167.40:443", 10003: "149.154.175.117:443",
	}
}

// DefaultDCs6 are the IPv6 addresses of the same data centres.
func DefaultDCs6() map[int]string {
	return map[int]string{
		1: "[2001:b28:f23d:f001::a]:443", 2: "[2001:67c:4e8:f002::a]:443", 3: "[2001:b28:f23d:f003::a]:443",
		4: "[2001:67c:4e8:f004::a]:443", 5: "[2001:b28:f23f:f005::a]:443",
		10001: "[2001:b28:f23d:f001::e]:443", 10002: "[2001:67c:4e8:f002::e]:443", 10003: "[2001:b28:f23d:f003::e]:443",
	}
}

// dcAddr picks the address of DC dc: an exact entry, else for a media DC
// (negative) or a test media DC (-10000-N) the positive one.
func dcAddr(dcs map[int]string, dc int) (string, error) {
	if a, ok := dcs[dc]; ok {
		return a, nil
	}
	if a, ok := dcs[-dc]; ok && dc < 0 {
		return a, nil
	}
	return "", fmt.Errorf("mtproto: unknown DC %d", dc)
}
