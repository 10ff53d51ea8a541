//go:build unix

package serve

import (
	"os"
	"strconv"
	"syscall"
)

// fileID identifies a file by its device and inode ("dev:inode"), to
// tell after a restart whether the file at a path is still the one a
// saved position is in; "" if the system does not say.
func fileID(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return strconv.FormatUint(uint64(st.Dev), 10) + ":" + strconv.FormatUint(uint64(st.Ino), 10)
}
