package storage

import "syscall"

// freeBytes is how many bytes the file system holding dir still gives an
// unprivileged writer; ok is false when it cannot tell.
func freeBytes(dir string) (free int64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * st.Bsize, true
}
