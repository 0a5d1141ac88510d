//go:build windows

package alerts

import "golang.org/x/sys/windows"

func diskUsage(dir string) (used, total uint64, err error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, 0, err
	}
	var free, tot, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, &tot, &totalFree); err != nil {
		return 0, 0, err
	}
	return tot - free, tot, nil
}
