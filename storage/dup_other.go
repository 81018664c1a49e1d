//go:build !unix

package storage

import (
	"errors"
	"os"
)

// inPlaceBackups says WriteTo can make its copy in a BackupFile: not
// here, where it goes through a temporary file.
const inPlaceBackups = false

func dupFile(BackupFile) (*os.File, error) {
	return nil, errors.New("not supported on this platform")
}
