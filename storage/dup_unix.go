//go:build unix

package storage

import (
	"os"
	"syscall"
)

// inPlaceBackups says WriteTo can make its copy in a BackupFile.
const inPlaceBackups = true

// dupFile is a descriptor of its own on f's open file, so that closing
// it leaves f open; it works on a file already unlinked.
func dupFile(f BackupFile) (*os.File, error) {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
