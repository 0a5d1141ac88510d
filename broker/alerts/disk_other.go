//go:build !unix && !windows

package alerts

import "errors"

var errNoDisk = errors.New("disk usage not available on this system")

func diskUsage(string) (uint64, uint64, error) { return 0, 0, errNoDisk }
