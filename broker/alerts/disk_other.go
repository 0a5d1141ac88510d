//go:build !unix && !windows

package alerts

func diskUsage(string) (uint64, uint64, error) { return 0, 0, errNoDisk }
