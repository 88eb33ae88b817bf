package wireguard

import (
	"sync"

	"golang.zx2c4.com/wireguard/tun"
)

// drainingTUN wraps a client's tun/netstack device so that closing it
// cannot panic. wireguard-go's netTun.Close closes its outgoing-packet
// channel while the gVisor stack may still be blocked sending a packet it
// just made (an ACK, a FIN) into it: "send on closed channel", about one
// benchmark run in seven. Close here keeps reading (and dropping) those
// packets while the inner device closes, so no sender is left blocked.
type drainingTUN struct {
	tun.Device
	once sync.Once
}

func drainOnClose(d tun.Device) tun.Device { return &drainingTUN{Device: d} }

func (d *drainingTUN) Close() error {
	var err error
	d.once.Do(func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			bufs, sizes := [][]byte{make([]byte, 65535)}, []int{0}
			for {
				if _, rerr := d.Device.Read(bufs, sizes, 0); rerr != nil {
					return // the inner device closed its channel
				}
			}
		}()
		err = d.Device.Close()
		<-done
	})
	return err
}
