// Package fileread reads the files a user names (pipelines, lock files,
// modules, bundles) with two guarantees: a path that is not a regular file
// (a device such as /dev/zero, a named pipe, a directory) is refused
// without being read or blocked on, and no more than a stated number of
// bytes is ever read, even from a file that grows while it is read.
package fileread

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// TooLargeError reports a file over the limit.
type TooLargeError struct {
	What, Path string
	Size       int64 // -1 if it grew past the limit while it was read
	Limit      int64
}

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("%s %s grew past the limit of %d bytes while it was read", e.What, e.Path, e.Limit)
	}
	return fmt.Sprintf("%s %s is %d bytes, over the limit of %d", e.What, e.Path, e.Size, e.Limit)
}

// NotRegularError reports a path that is not a regular file.
type NotRegularError struct {
	What, Path string
	Mode       os.FileMode
}

func (e *NotRegularError) Error() string { return e.What + " " + e.Path + " is " + kind(e.Mode) }

// Read returns the contents of the regular file at path, which must hold
// at most limit bytes. what names the file in errors ("pipeline",
// "module").
func Read(path, what string, limit int64) ([]byte, error) {
	f, err := Open(path, what)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, &TooLargeError{What: what, Path: path, Size: fi.Size(), Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{What: what, Path: path, Size: -1, Limit: limit}
	}
	return b, nil
}

// Open opens the regular file at path for reading. It refuses anything
// else before reading from it: the open does not block (on a named pipe
// with no writer, say), and the opened file is checked, not the path.
func Open(path, what string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = &NotRegularError{What: what, Path: path, Mode: fi.Mode()}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory, not a file"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe, not a regular file"
	case m&os.ModeSocket != 0:
		return "a socket, not a regular file"
	case m&os.ModeDevice != 0:
		return "a device, not a regular file"
	}
	return "not a regular file"
}
