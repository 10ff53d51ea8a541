package host

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// rootFS is a granted directory as the guest sees it. Every operation is
// performed through an os.Root: relative to the directory's descriptor,
// one path component at a time (openat), refusing any step that leaves the
// directory by "..", by an absolute symbolic link or by a relative one.
// No path is ever checked and then used again by name, so a guest that
// swaps a directory for a link (by renames, in another instance of its
// knot) between two steps still cannot reach outside. The guest cannot
// make links. (A hard link made on the host to a file outside is
// indistinguishable from the file, and is out of scope.)
type rootFS struct {
	root     *os.Root
	readOnly bool
}

var _ experimentalsys.FS = (*rootFS)(nil)

func confine(dir string, readOnly bool) (*rootFS, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &rootFS{root: root, readOnly: readOnly}, nil
}

// rel turns a guest path below the mount into a path for the root.
func rel(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	if p == "" {
		return "."
	}
	return path.Clean(p)
}

// errno maps an error of the root to the guest's errno: the OS's own
// errors as they are, and the root's refusal to leave the directory (an
// error that is not the OS's) as EACCES.
func errno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	var se syscall.Errno
	if errors.As(err, &se) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) ||
		errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrInvalid) || errors.Is(err, fs.ErrClosed) {
		return experimentalsys.UnwrapOSError(err)
	}
	return experimentalsys.EACCES
}

// opener is an fs.FS that opens one path the way one OpenFile call asked,
// through the root; sysfs.AdaptFS turns what it opens into a guest file.
type opener struct {
	root   *os.Root
	flag   int
	perm   fs.FileMode
	opened **os.File
}

func (o opener) Open(name string) (fs.File, error) {
	f, err := o.root.OpenFile(name, o.flag, o.perm)
	if err != nil {
		return nil, err
	}
	*o.opened = f
	return f, nil
}

const writeFlags = experimentalsys.O_WRONLY | experimentalsys.O_RDWR | experimentalsys.O_CREAT |
	experimentalsys.O_TRUNC | experimentalsys.O_APPEND

func (r *rootFS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	p = rel(p)
	if r.readOnly && flag&writeFlags != 0 {
		return nil, experimentalsys.EROFS
	}
	if flag&experimentalsys.O_NOFOLLOW != 0 {
		// Refuse a link at p itself. Between this check and the open p
		// may change, but only ever to something inside the directory.
		if fi, err := r.root.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, experimentalsys.ELOOP
		}
	}
	// O_NONBLOCK: opening a named pipe must not wait for a writer; it is
	// refused below, as are devices and sockets.
	var osf *os.File
	f, e := (&sysfs.AdaptFS{FS: opener{root: r.root, flag: osFlag(flag) | syscall.O_NONBLOCK, perm: perm, opened: &osf}}).OpenFile(p, flag, perm)
	if e != 0 {
		if osf != nil {
			osf.Close()
		}
		return nil, e
	}
	if fi, err := osf.Stat(); err != nil || !(fi.Mode().IsRegular() || fi.IsDir()) {
		f.Close()
		return nil, experimentalsys.EACCES // a device, a pipe or a socket could block or never end
	}
	if flag&experimentalsys.O_DIRECTORY != 0 {
		if dir, e := f.IsDir(); e != 0 || !dir {
			f.Close()
			return nil, experimentalsys.ENOTDIR
		}
	}
	return &rootFile{File: f, os: osf, append: flag&experimentalsys.O_APPEND != 0}, 0
}

// osFlag converts a guest's open flags to os.OpenFile's.
func osFlag(f experimentalsys.Oflag) int {
	var flag int
	switch f & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		flag = os.O_RDWR
	case experimentalsys.O_WRONLY:
		flag = os.O_WRONLY
	default:
		flag = os.O_RDONLY
	}
	for _, m := range [...]struct {
		guest experimentalsys.Oflag
		os    int
	}{{experimentalsys.O_APPEND, os.O_APPEND}, {experimentalsys.O_CREAT, os.O_CREATE}, {experimentalsys.O_EXCL, os.O_EXCL},
		{experimentalsys.O_SYNC, os.O_SYNC}, {experimentalsys.O_TRUNC, os.O_TRUNC}} {
		if f&m.guest != 0 {
			flag |= m.os
		}
	}
	return flag
}

func (r *rootFS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := r.root.Lstat(rel(p))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (r *rootFS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := r.root.Stat(rel(p))
	if err != nil {
		return sys.Stat_t{}, errno(err)
	}
	return sys.NewStat_t(fi), 0
}

func (r *rootFS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	e := errno(r.root.Mkdir(rel(p), perm))
	if e == experimentalsys.ENOTDIR {
		e = experimentalsys.ENOENT
	}
	return e
}

func (r *rootFS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	return errno(r.root.Chmod(rel(p), perm))
}

func (r *rootFS) Rename(from, to string) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	return errno(r.root.Rename(rel(from), rel(to)))
}

// remove removes p if it is (dir) or is not a directory. The check and the
// removal are two steps, but both inside the directory.
func (r *rootFS) remove(p string, dir bool) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	p = rel(p)
	fi, err := r.root.Lstat(p)
	switch {
	case err != nil:
		return errno(err)
	case dir && !fi.IsDir():
		return experimentalsys.ENOTDIR
	case !dir && fi.IsDir():
		return experimentalsys.EISDIR
	}
	return errno(r.root.Remove(p))
}

func (r *rootFS) Rmdir(p string) experimentalsys.Errno  { return r.remove(p, true) }
func (r *rootFS) Unlink(p string) experimentalsys.Errno { return r.remove(p, false) }

// Link and Symlink are refused: a link made by the guest could point
// anywhere, on the host's next use of the directory if not on the guest's.
func (r *rootFS) Link(string, string) experimentalsys.Errno    { return experimentalsys.EPERM }
func (r *rootFS) Symlink(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

func (r *rootFS) Readlink(p string) (string, experimentalsys.Errno) {
	p = rel(p)
	if _, err := r.root.Stat(p); err != nil { // do not tell where a link that leaves points
		return "", errno(err)
	}
	target, err := r.root.Readlink(p)
	return target, errno(err)
}

func (r *rootFS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if r.readOnly {
		return experimentalsys.EROFS
	}
	return errno(r.root.Chtimes(rel(p), utime(atim), utime(mtim)))
}

// utime converts a WASI timestamp; the zero time leaves it unchanged.
func utime(ns int64) time.Time {
	if ns == experimentalsys.UTIME_OMIT {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// rootFile is a file opened through the root. sysfs.AdaptFS supplies
// reading, writing, seeking and listing; rootFile adds what needs the
// *os.File itself.
type rootFile struct {
	experimentalsys.File
	os     *os.File
	append bool
}

func (f *rootFile) IsAppend() bool { return f.append }

func (f *rootFile) SetAppend(enable bool) experimentalsys.Errno {
	if enable != f.append {
		return experimentalsys.ENOSYS
	}
	return 0
}

func (f *rootFile) Truncate(size int64) experimentalsys.Errno {
	if size < 0 {
		return experimentalsys.EINVAL
	}
	return errno(f.os.Truncate(size))
}

func (f *rootFile) Sync() experimentalsys.Errno     { return errno(f.os.Sync()) }
func (f *rootFile) Datasync() experimentalsys.Errno { return errno(f.os.Sync()) }
