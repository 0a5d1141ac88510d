//go:build unix

package alerts

import "golang.org/x/sys/unix"

func diskUsage(dir string) (used, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	total = st.Blocks * uint64(st.Bsize)
	// Space kept for root counts as used: the bus cannot write there.
	return total - st.Bavail*uint64(st.Bsize), total, nil
}
